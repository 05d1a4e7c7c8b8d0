import json
import re
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
    assert "00-datasets" in out and "profile = 'quick'" in out
    assert "n (int) [images]: examples shown of the dataset looked at closely" in out
    assert "smoke=16, quick=64, medium=256, full=256" in out and "profiles: smoke (" in out


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

    from replab import runs

    res = run_cli("run-all", "00-datasets", "--profile", "smoke", "--record", "--stand-ins", "--results",
                  str(tmp_path / "results" / "smoke"), "--output-dir", str(tmp_path / "out"),
                  env={"REPLAB_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr[-2000:]
    kept = claims.load_all(tmp_path / "results" / "smoke" / "claims")
    assert {c.claim_id for c in kept} == {"data-deterministic", "mnist10k-complete"}
    (record,) = runs.load_runs(tmp_path / "results" / "smoke")
    assert record["page"] == "00-datasets" and record["profile"] == "smoke" and record["status"] == "ok"
    assert record["wall_s"] > 0 and record["torch"] and record["device"] == kept[0].hardware
    assert record["stand_ins"] is True
    # the scorecard of a quick build gets a smoke column from what was recorded
    quick = [claims.Claim(**{**vars(c), "profile": "quick"}) for c in kept]
    md = claims.scorecard_markdown(quick, claims.recorded_profiles(tmp_path / "results"))
    assert "| claim | quick | smoke | effect [95% interval] | n |" in md and "not run" not in md


def test_run_all_starts_no_page_past_its_time_limit(tmp_path):
    from replab import runs

    res = run_cli("run-all", "00-datasets", "peste2017/04-geodesics", "--profile", "smoke", "--record",
                  "--time-limit", "0", "--results", str(tmp_path / "results" / "smoke"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "0 of 0 pages ran" in res.stdout
    assert "not started (past --time-limit): 00-datasets, peste2017/04-geodesics" in res.stdout
    assert runs.load_runs(tmp_path / "results" / "smoke") == []


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


@pytest.fixture
def no_kernel(monkeypatch):
    """Fail the test if a command starts executing a notebook."""
    from replab import notebooks

    def boom(*a, **k):
        raise AssertionError("a kernel was started")

    monkeypatch.setattr(notebooks, "execute", boom)
    monkeypatch.setattr("papermill.execute_notebook", boom)
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("args, message", [
    (["-p", "n", "abc"], "parameter 'n' of 00-datasets must be an int, got 'abc' (str)"),
    (["-p", "n", "16.5"], "must be an int, got 16.5"),
    (["-p", "n", "True"], "must be an int, got True"),
    (["-p", "seed", "None"], "parameter 'seed' of notebook 00-datasets takes an integer (default 0), got None"),
    (["-p", "seed", "[1]"], "takes an integer"),
    (["-p", "dataset", "3"], "parameter 'dataset' of notebook 00-datasets takes a string"),
    (["-p", "profile", "3"], "unknown profile 3"),
])
def test_run_checks_parameter_types_before_starting_a_kernel(args, message, capsys, no_kernel, tmp_path):
    assert cli.main(["run", "00-datasets", *args, "-o", str(tmp_path / "out.ipynb")]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("page, name, good, bad, message", [
    ("peste2017/01-active-components", "alphas", "[0.5, 1]", "['a']", "must be a float"),
    ("peste2017/01-active-components", "threshold", "1", "'x'", "must be a float"),
    ("bonheme2022/01-encoder-before-decoder", "datasets", "['dsprites']", "'dsprites'", "must be a list"),
    ("peste2017/04-geodesics", "geo_k", "16", "abc", "must be an int"),
])
def test_parameter_types_come_from_the_experiments_and_defaults(page, name, good, bad, message):
    from replab import notebooks

    p = notebooks.find(page)
    notebooks.check_parameters(p, {name: notebooks.parse_value(good)})
    notebooks.check_parameters(p, {name: None})
    with pytest.raises(ValueError, match=re.escape(message)):
        notebooks.check_parameters(p, {name: notebooks.parse_value(bad)})


def test_every_parameter_of_every_page_has_a_known_type():
    from replab import notebooks

    from replab import profiles

    for page in notebooks.discover(ROOT / "notebooks"):
        sizes = {f.name for cls in profiles.page_experiments(page.name) for f in profiles.fields(cls)}
        untyped = [name for name, examples in notebooks.parameter_examples(page).items()
                   if not examples and name not in sizes]
        assert not untyped, (f"{page.name}: parameters {untyped} default to None and are no size of the page's "
                             f"experiments; annotate them in the parameters cell (e.g. `n: int | None = None`)")


def _write_notebook(path, metadata):
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(metadata)
    nbformat.write(nb, str(path))


@pytest.mark.parametrize("case, message", [
    ("folder", "is a folder"),
    ("missing-parent", "does not exist"),
    ("parent-is-a-file", "does not exist (or is not a folder)"),
    ("not-ipynb", "must be a notebook file ending in .ipynb"),
    ("text-file", "exists and is not a notebook"),
    ("own-notebook", "a notebook that no earlier run wrote"),
    ("page-source", "the page's own source"),
])
def test_run_checks_the_output_before_starting_a_kernel(case, message, tmp_path, capsys, no_kernel):
    before = {}
    if case == "folder":
        out = tmp_path / "existing"
        out.mkdir()
    elif case == "missing-parent":
        out = tmp_path / "nowhere" / "out.ipynb"
    elif case == "parent-is-a-file":
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "out.ipynb"
    elif case == "not-ipynb":
        out = tmp_path / "notes.txt"
        out.write_text("mine")
    elif case == "text-file":
        out = tmp_path / "out.ipynb"
        out.write_text("mine")
    elif case == "own-notebook":
        out = tmp_path / "analysis.ipynb"
        _write_notebook(out, {"kernelspec": {"name": "python3"}})
    else:
        out = ROOT / "notebooks" / "00-datasets.ipynb"
    if out.is_file():
        before[out] = out.read_bytes()
    assert cli.main(["run", "00-datasets", "-o", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert all(path.read_bytes() == data for path, data in before.items())
    assert not (tmp_path / "nowhere").exists()


def test_an_earlier_runs_notebook_is_replaced(tmp_path, monkeypatch):
    from replab import notebooks

    out = tmp_path / "out.ipynb"
    _write_notebook(out, {"papermill": {"input_path": "00-datasets.ipynb"}})
    ran = []
    monkeypatch.setattr(notebooks, "execute", lambda page, o, *a, **k: ran.append(o))
    monkeypatch.chdir(ROOT)
    assert cli.main(["run", "00-datasets", "-o", str(out)]) == 0
    assert ran == [out]


def test_an_unreadable_parameter_annotation_is_named(tmp_path):
    from replab import notebooks

    page = tmp_path / "p.md"
    page.write_text("---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\nkernelspec:\n"
                    "  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
                    "```{code-cell} ipython3\n:tags: [parameters]\n\nprofile = \"quick\"\nn: Widget = None\n```\n")
    with pytest.raises(ValueError, match="parameter 'n' has an annotation replab cannot read: Widget"):
        notebooks.parameter_examples(notebooks.Page(page))
