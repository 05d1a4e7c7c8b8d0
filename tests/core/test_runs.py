"""Recorded runs: provenance, run records and the scorecard's columns per profile."""
from __future__ import annotations

import json
import subprocess

import pytest

from replab import claims, runs
from replab.book import write_scorecard


def test_provenance_names_the_commit_and_whether_the_tree_is_dirty(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "f.txt").write_text("a")
    subprocess.run([*git, "add", "f.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    info = runs.provenance(repo)
    assert info["commit"] == head and info["dirty"] is False and info["torch"]
    (repo / "f.txt").write_text("b")
    assert runs.provenance(repo)["dirty"] is True
    monkeypatch.setenv("REPLAB_COMMIT", "abc123")           # a copy of the tree without .git (a GPU machine)
    assert runs.provenance(tmp_path / "nogit")["commit"] == "abc123"


def test_run_records_round_trip_and_bad_ones_are_named(tmp_path):
    info = {"commit": "c", "dirty": False, "device": "GPU X", "torch": "2.x", "cuda": None, "python": "3",
            "date": "d"}
    path = runs.record_run(tmp_path, "peste2017/01-a", "medium", 12.34, True, info)
    assert path.name == "peste2017__01-a.json"
    (record,) = runs.load_runs(tmp_path)
    assert record == {"page": "peste2017/01-a", "profile": "medium", "wall_s": 12.3, "status": "ok", **info}
    with pytest.raises(ValueError, match="wall_s"):
        runs.record_run(tmp_path, "p", "medium", -1.0, True, info)
    (tmp_path / "runs" / "bad.json").write_text("[1]")
    with pytest.raises(ValueError, match="bad.json must be a JSON object"):
        runs.load_runs(tmp_path)


def _record(folder, profile, verdict=True, page="peste2017/01-x"):
    rec = claims.Recorder(page, profile, directory=folder)
    rec.add("peste2017", "c1", "counts saturate", verdict)


def test_the_scorecard_has_a_column_per_recorded_profile(tmp_path):
    root = tmp_path / "repo"
    (root / "book").mkdir(parents=True)
    _record(tmp_path / "build", "quick")
    _record(root / "results" / "full" / "claims", "full", verdict=False)
    _record(root / "results" / "quick" / "claims", "quick", verdict=False)   # the built profile: not a column
    text = write_scorecard(root, tmp_path / "build").read_text()
    assert "| claim | quick | full | effect [95% interval] | n |" in text
    assert "| reproduced | not reproduced |" in text
    (root / "results" / "huge" / "claims").mkdir(parents=True)
    with pytest.raises(ValueError, match="'huge' is not one of smoke, quick, medium, full"):
        write_scorecard(root, tmp_path / "build")


def test_a_profile_without_records_gets_no_column(tmp_path):
    _record(tmp_path / "build", "quick")
    (tmp_path / "results" / "full" / "claims").mkdir(parents=True)
    assert claims.recorded_profiles(tmp_path / "results") == {}
    md = claims.scorecard_markdown(claims.load_all(tmp_path / "build"), {})
    assert "| claim | quick | effect [95% interval] | n |" in md
