import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from replab import cli

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args, cwd=ROOT, env=None):
    import os

    e = {**os.environ, "REPLAB_QUIET": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "replab.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=e, timeout=600)


def test_list_shows_pages_and_parameters(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "00-datasets" in out and "profile = 'quick'" in out and "n = None" in out


@pytest.mark.parametrize("args, message", [
    (["run", "nope/none"], "unknown notebook 'nope/none'"),
    (["run", "00-datasets", "-p", "width", "3"], "unknown parameter(s) ['width'] for notebook 00-datasets"),
    (["run", "00-datasets", "--profile", "huge"], "unknown profile 'huge'"),
])
def test_run_errors_are_clear(args, message, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(args) == 2
    assert message in capsys.readouterr().err


@pytest.mark.notebook
def test_run_writes_an_executed_notebook(tmp_path):
    out = tmp_path / "datasets.ipynb"
    res = run_cli("run", "notebooks/00-datasets.md", "-p", "n", "16", "--profile", "smoke", "-o", str(out),
                  env={"REPLAB_CLAIMS": str(tmp_path / "claims"), "REPLAB_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr[-2000:]
    nb = nbformat.read(str(out), as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "n = 16" in injected[0].source
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "figures must be in the executed notebook"
    rec = json.loads((tmp_path / "claims" / "00-datasets.json").read_text())
    assert {c["claim_id"] for c in rec} == {"data-deterministic", "mnist10k-complete"}


def test_cache_commands(tmp_path, capsys, monkeypatch):
    import torch

    from replab.cache import ArtifactCache

    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path))
    ArtifactCache().save("model", {"a": 1}, torch.ones(3))
    assert cli.main(["cache", "ls"]) == 0
    assert "1 artifacts" in capsys.readouterr().out
    assert cli.main(["cache", "clear"]) == 0
    assert "removed 1 artifacts" in capsys.readouterr().out


@pytest.mark.notebook
def test_run_all_keeps_claims_for_the_scorecard(tmp_path, monkeypatch):
    from replab import claims

    res = run_cli("run-all", "00-datasets", "--profile", "smoke", "--results", str(tmp_path / "full"),
                  "--output-dir", str(tmp_path / "out"), env={"REPLAB_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr[-2000:]
    kept = claims.load_all(tmp_path / "full" / "claims")
    assert {c.claim_id for c in kept} == {"data-deterministic", "mnist10k-complete"}
    md = claims.scorecard_markdown(kept, kept)
    assert "not run" not in md and kept[0].hardware in md


@pytest.mark.parametrize("kind", ["..", "../x", "ABSOLUTE", ".hidden", "a/b"])
def test_cache_clear_refuses_a_kind_outside_the_cache(tmp_path, kind, capsys, monkeypatch):
    import torch

    from replab.cache import ArtifactCache

    (tmp_path / "x").mkdir()
    if kind == "ABSOLUTE":  # an absolute path inside the test's folder: never a real folder of the machine
        kind = str(tmp_path / "x")
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache"))
    ArtifactCache().save("model", {"a": 1}, torch.ones(3))
    for action in ("clear", "ls"):
        assert cli.main(["cache", action, "--kind", kind]) == 2
        assert "artifact kind must be a plain name" in capsys.readouterr().err
    assert (tmp_path / "x").is_dir() and len(ArtifactCache().entries()) == 1


def test_cache_ls_shows_a_malformed_sidecar_as_damaged(tmp_path, capsys, monkeypatch):
    import torch

    from replab.cache import ArtifactCache

    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path))
    path = ArtifactCache().save("model", {"a": 1}, torch.ones(3))
    for sidecar in ("[1]", "null"):
        path.with_suffix(".json").write_text(sidecar)
        assert cli.main(["cache", "ls"]) == 0
        assert "DAMAGED" in capsys.readouterr().out
