import json

import pytest
import torch

from replab import claims


def test_recorder_writes_and_replaces(tmp_path):
    rec = claims.Recorder("paper/01-page", "smoke", directory=tmp_path)
    rec.add("peste2017", "c1", "a claim", True, value=torch.tensor(0.5), values=[1.0, 2.0])
    rec.add("peste2017", "c2", "b claim", False, ratio=1.23456789)
    rec.add("peste2017", "c1", "a claim", None)
    stored = json.loads((tmp_path / "paper__01-page.json").read_text())
    assert [c["claim_id"] for c in stored] == ["c2", "c1"]
    assert stored[1]["verdict"] == "inconclusive"
    assert stored[0]["measured"]["ratio"] == pytest.approx(1.23457)
    table = rec.table()
    assert list(table["verdict"]) == ["not reproduced", "inconclusive"]


def test_loaded_claims_make_a_scorecard(tmp_path):
    rec = claims.Recorder("peste2017/01-x", "quick", directory=tmp_path)
    rec.add("peste2017", "c1", "counts saturate", True, n=3)
    rec.add("peste2017", "c2", "more is better", False, acc=0.5)
    loaded = claims.load_all(tmp_path)
    md = claims.scorecard_markdown(loaded)
    assert "**2 claims**: 1 reproduced, 1 not reproduced, 0 inconclusive; 0 with an interval." in md
    assert "| claim | quick | effect [95% interval] | n |" in md
    assert "| [`c1`](../notebooks/peste2017/01-x.md): counts saturate | reproduced |" in md
    full = [claims.Claim(**{**vars(loaded[0]), "profile": "full", "verdict": "not reproduced"})]
    md = claims.scorecard_markdown(loaded, {"full": full})
    assert "| claim | quick | full | effect [95% interval] | n |" in md
    assert "counts saturate | reproduced | not reproduced |" in md and "counts saturate | not reproduced | not run" \
        in md.replace("more is better", "counts saturate")


def test_claims_with_effects_get_the_rule_and_a_compact_row(tmp_path):
    from replab.evidence import Effect

    rec = claims.Recorder("peste2017/01-x", "quick", directory=tmp_path)
    rec.add_effect("peste2017", "up", "dropout raises complexity", Effect("Δ nats", 2.0, 0.5, 3.5,
                   n={"seeds": 3}), source="Fig. 4")
    rec.add_effect("peste2017", "big", "a drop of 20 nats", Effect("drop", 6.0, 4.0, 8.0, smallest=20.0,
                   n={"seeds": 3, "examples": 200}), source="Table 1")
    rec.add_effect("peste2017", "tie", "no interval", Effect("x", 1.0, None, None, why="one run"), source="Sec. 2")
    loaded = claims.load_all(tmp_path)
    assert [c.verdict for c in loaded] == ["reproduced", "not reproduced", "inconclusive"]
    md = claims.scorecard_markdown(loaded, figure="forest.svg")
    assert "![" in md and "(forest.svg)" in md and "2 with an interval" in md
    assert "[`up`](../notebooks/peste2017/01-x.md) (Fig. 4): dropout raises complexity | reproduced | " \
           "2 [0.5, 3.5] vs 0 | 3 seeds |" in md
    assert "6 [4, 8] vs 0, needs ≥ 20 | 3 seeds × 200 examples |" in md
    assert "1; no interval: one run" in md
    with pytest.raises(ValueError, match="name the paper's figure"):
        rec.add_effect("peste2017", "x", "y", Effect("x", 1.0, 0.0, 2.0), source="")
    # every table row has four cells: the page width holds it
    rows = [line for line in md.splitlines() if line.startswith("| [")]
    assert rows and all(line.count(" | ") == 3 for line in rows)


def test_the_forest_plot_draws_each_interval_on_its_own_scale(tmp_path):
    from replab.evidence import Effect
    from replab.plotting.claims import forest, forest_rows

    rec = claims.Recorder("p/01", "quick", directory=tmp_path)
    rec.add_effect("jamroz2020", "ratio", "r", Effect("ratio", 3.0, 2.0, 5.0, null=1.0), source="Fig. 1")
    rec.add_effect("jamroz2020", "less", "l", Effect("d", -2.0, -4.0, 1.0, side="less"), source="Fig. 2")
    rec.add("jamroz2020", "old", "o", True)
    rows = {r["label"]: r for r in forest_rows(rec.claims)}
    assert set(rows) == {"ratio", "less"}             # a claim without an interval is not drawn
    assert rows["ratio"]["high"] == pytest.approx(1.0) and rows["ratio"]["low"] == pytest.approx(0.25)
    assert rows["less"]["low"] == pytest.approx(-0.25) and rows["less"]["high"] == pytest.approx(1.0)
    fig = forest(rec.claims)
    assert len(fig.axes[0].get_yticklabels()) == 2


def test_bad_values_are_rejected():
    with pytest.raises(ValueError, match="unknown paper"):
        claims.Claim("p", "nobody2020", "c", "x", "reproduced")
    with pytest.raises(ValueError, match="verdict must be one of"):
        claims.Claim("p", "peste2017", "c", "x", "maybe")
    with pytest.raises(ValueError, match="unknown profile"):
        claims.Claim("p", "peste2017", "c", "x", "reproduced", profile="huge")


def _fake_repository(tmp_path):
    """A folder that looks like the repository (so nothing touches the real book/scorecard.md)."""
    root = tmp_path / "repo"
    (root / "lib" / "replab").mkdir(parents=True)
    (root / "book").mkdir()
    (root / "_config.yml").write_text("title: t\n")
    (root / "book" / "scorecard.md").write_text("# Scorecard\n\nthe committed one\n")
    return root


def _record(directory, page="peste2017/01-x"):
    claims.Recorder(page, "quick", directory=directory).add("peste2017", "c1", "counts saturate", True, n=3)


@pytest.mark.parametrize("make", ["missing", "empty", "a-file", "only-other-files"])
def test_the_scorecard_is_never_written_from_missing_or_empty_claims(tmp_path, make):
    from replab.book import write_scorecard

    root = _fake_repository(tmp_path)
    where = tmp_path / "claims"
    if make == "empty":
        where.mkdir()
    elif make == "a-file":
        where.write_text("[]")
    elif make == "only-other-files":
        where.mkdir()
        (where / "notes.txt").write_text("x")
    with pytest.raises((ValueError, FileNotFoundError), match=r"claims.*(no claim|not a folder|does not exist)"):
        write_scorecard(root, where)
    assert (root / "book" / "scorecard.md").read_text() == "# Scorecard\n\nthe committed one\n"


@pytest.mark.parametrize("text, problem", [("{", "not valid JSON"), ("[]", "no claim"), ("{}", "a list"),
                                           ("[1]", "a claim record"), ('[{"page": "p"}]', "a claim record")])
def test_damaged_claim_files_are_named(tmp_path, text, problem):
    from replab.book import write_scorecard

    root = _fake_repository(tmp_path)
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "page.json").write_text(text)
    with pytest.raises(ValueError, match=problem) as info:
        write_scorecard(root, tmp_path / "claims")
    assert "page.json" in str(info.value) or problem == "no claim"
    assert "the committed one" in (root / "book" / "scorecard.md").read_text()


def test_the_scorecard_is_written_atomically_from_recorded_claims(tmp_path, monkeypatch):
    from replab.book import write_scorecard

    root = _fake_repository(tmp_path)
    _record(tmp_path / "claims")
    out = write_scorecard(root, tmp_path / "claims")
    assert out == root / "book" / "scorecard.md" and "**1 claims**" in out.read_text()
    _record(tmp_path / "claims", page="peste2017/02-y")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        write_scorecard(root, tmp_path / "claims")
    assert "**1 claims**" in out.read_text()
    assert sorted(p.name for p in out.parent.iterdir()) == ["scorecard-forest.svg", "scorecard.md"]


def test_scorecard_command_refuses_missing_claims(tmp_path, capsys, monkeypatch):
    from replab import cli

    root = _fake_repository(tmp_path)
    monkeypatch.chdir(root)
    monkeypatch.delenv("REPLAB_CLAIMS", raising=False)
    assert cli.main(["scorecard"]) == 2  # a fresh checkout: no _build/claims
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["scorecard", "--claims", str(tmp_path / "empty")]) == 2
    assert "no claim" in capsys.readouterr().err
    assert (root / "book" / "scorecard.md").read_text() == "# Scorecard\n\nthe committed one\n"
    _record(tmp_path / "claims")
    assert cli.main(["scorecard", "--claims", str(tmp_path / "claims")]) == 0
    assert "**1 claims**" in (root / "book" / "scorecard.md").read_text()
