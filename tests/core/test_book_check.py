"""The browser check finds broken internal links (and, where Chromium is installed, renders pages)."""
import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("book_check", ROOT / "tools" / "book_check.py")
book_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(book_check)

PAGE = "<html><head><title>{title}</title></head><body>{body}</body></html>"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360f8cf0000000301010018dd8db00000000049454e44ae426082")


def site(tmp_path, body):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "ok.png").write_bytes(PNG)
    (tmp_path / "index.html").write_text(PAGE.format(title="Home", body=body))
    (tmp_path / "other.html").write_text(PAGE.format(title="Other", body="<p>x</p>"))
    return tmp_path


def test_internal_links_are_checked(tmp_path):
    root = site(tmp_path, '<a href="other.html#x">ok</a><a href="missing.html">bad</a>'
                          '<a href="https://example.org/x.html">external</a><img src="img/ok.png">')
    assert book_check.broken_links(root) == ["index.html -> missing.html"]


@pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")), reason="no Chromium")
def test_browser_reports_broken_image_and_script_error(tmp_path, capsys):
    root = site(tmp_path, '<img src="img/ok.png"><img src="img/none.png"><script>undefinedFunction();</script>')
    rc = book_check.main([str(root), "--screenshots", str(tmp_path / "shots")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "image does not render" in err and "none.png" in err
    assert "JavaScript error" in err and "undefinedFunction" in err
    (root / "index.html").write_text(PAGE.format(title="Home", body='<img src="img/ok.png">'))
    assert book_check.main([str(root), "--screenshots", str(tmp_path / "shots")]) == 0
    assert (tmp_path / "shots" / "index.png").is_file()
