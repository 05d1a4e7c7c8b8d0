"""The book build executes pages in parallel into the cache and fails on a cell error."""
from pathlib import Path

import pytest

from replab.book import content_fingerprint, execute_pages, write_scorecard

PAGE = """---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# A page

```{{code-cell}} ipython3
:tags: [parameters]
profile = "quick"
```

```{{code-cell}} ipython3
from replab.claims import Recorder
Recorder("{name}", profile).add("replab", "c", "runs", True)
{body}
```
"""


def make_book(tmp_path: Path, pages: dict) -> Path:
    root = tmp_path / "book"
    (root / "lib" / "replab").mkdir(parents=True)
    (root / "_config.yml").write_text("title: t\n")
    (root / "notebooks").mkdir()
    for name, body in pages.items():
        (root / "notebooks" / f"{name}.md").write_text(PAGE.format(name=name, body=body))
    return root


@pytest.mark.notebook
def test_cell_error_fails_and_success_is_cached(tmp_path):
    root = make_book(tmp_path, {"good": "x = 1", "bad": "1 / 0"})
    cache_dir, claims_dir = root / "_build" / ".jupyter_cache", root / "_build" / "claims"
    with pytest.raises(RuntimeError, match=r"(?s)pages failed to execute.*bad\.md.*ZeroDivisionError"):
        execute_pages(root, cache_dir, claims_dir, timeout=120)
    (root / "notebooks" / "bad.md").unlink()
    times = execute_pages(root, cache_dir, claims_dir, timeout=120)
    assert set(times) == {"good"} and times["good"] is not None
    assert (claims_dir / "good.json").is_file()
    # What `make book` does next: the scorecard from the claims the pages recorded.
    scorecard = write_scorecard(root, claims_dir)
    assert scorecard == root / "book" / "scorecard.md"
    assert "**1 claims**: 1 reproduced" in scorecard.read_text()


def test_build_stops_before_html_when_no_page_recorded_claims(tmp_path, monkeypatch, capsys):
    from replab import book

    root = make_book(tmp_path, {})
    (root / "book").mkdir()
    (root / "book" / "scorecard.md").write_text("committed")
    monkeypatch.chdir(root)
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(book, "execute_pages", lambda *a, **k: {})
    monkeypatch.setattr(book, "_install_static", lambda *a: (_ for _ in ()).throw(AssertionError("went on")))
    assert book.build() == 1
    assert "does not exist" in capsys.readouterr().err
    assert (root / "book" / "scorecard.md").read_text() == "committed"


def test_fingerprint_follows_library_and_data(tmp_path):
    root = make_book(tmp_path, {})
    (root / "lib" / "replab" / "m.py").write_text("a = 1\n")
    before = content_fingerprint(root)
    (root / "lib" / "replab" / "m.py").write_text("a = 2\n")
    assert content_fingerprint(root) != before
    mid = content_fingerprint(root)
    (root / "data").mkdir()
    (root / "data" / "x.npz").write_bytes(b"1")
    assert content_fingerprint(root) != mid
