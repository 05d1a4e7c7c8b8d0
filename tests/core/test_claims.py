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
    assert "**2 claims**: 1 reproduced, 1 not reproduced, 0 inconclusive." in md
    assert "[peste2017/01-x](../notebooks/peste2017/01-x.md)" in md
    assert "not run" in md
    full = [claims.Claim(**{**vars(loaded[0]), "profile": "full", "hardware": "GPU X"})]
    assert "GPU X" in claims.scorecard_markdown(loaded, full)


def test_bad_values_are_rejected():
    with pytest.raises(ValueError, match="unknown paper"):
        claims.Claim("p", "nobody2020", "c", "x", "reproduced")
    with pytest.raises(ValueError, match="verdict must be one of"):
        claims.Claim("p", "peste2017", "c", "x", "maybe")
    with pytest.raises(ValueError, match="unknown profile"):
        claims.Claim("p", "peste2017", "c", "x", "reproduced", profile="huge")
