"""Every page is a MyST notebook paired with an output-free .ipynb, starts with a parameters cell, and is in the
table of contents."""
import ast
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from replab.notebooks import discover, read_parameters

ROOT = Path(__file__).resolve().parents[2]
PAGES = discover(ROOT / "notebooks")


def _code_cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells if c.cell_type == "code"]


def test_there_are_pages():
    assert any(p.name == "00-datasets" for p in PAGES)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_pair_in_sync_and_output_free(page):
    ipynb = page.path.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{page.path.name} has no paired .ipynb: run `make sync`"
    md = jupytext.read(str(page.path))
    nb = nbformat.read(str(ipynb), as_version=4)
    assert [(c.cell_type, c.source.strip()) for c in md.cells] == \
        [(c.cell_type, c.source.strip()) for c in nb.cells], f"{ipynb.name} is out of sync: run `make sync`"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs"), f"{ipynb.name} holds outputs: strip them"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_first_code_cell_is_parameters_with_quick_profile(page):
    nb = jupytext.read(str(page.path))
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", []), "the first code cell must be tagged 'parameters'"
    params = read_parameters(page.path)
    assert params.get("profile") == "quick"
    ast.parse(first.source)


def _toc_files(node):
    out = []
    if isinstance(node, dict):
        if "file" in node:
            out.append(node["file"])
        if "root" in node:
            out.append(node["root"])
        for v in node.values():
            out += _toc_files(v)
    elif isinstance(node, list):
        for v in node:
            out += _toc_files(v)
    return out


def test_table_of_contents_lists_every_page_and_only_existing_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = _toc_files(toc)
    for f in files:
        assert (ROOT / f"{f}.md").is_file(), f"_toc.yml names a missing page: {f}"
    for page in PAGES:
        assert f"notebooks/{page.name}" in files, f"{page.name} is not in _toc.yml"


def _cell_after_parameters(nb):
    cells = [c for c in nb.cells if c.cell_type == "code"]
    return cells[1] if len(cells) > 1 and "parameters" in cells[0].metadata.get("tags", []) else None


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_page_installs_replab_on_colab_right_after_its_parameters(page):
    from replab.notebooks import SETUP_TAG, setup_cell_source

    ipynb = page.path.with_suffix(".ipynb")  # what the Colab button opens
    setup = _cell_after_parameters(nbformat.read(str(ipynb), as_version=4))
    assert setup is not None and setup.source == setup_cell_source(ROOT), \
        f"{ipynb.name}: the cell after the parameters cell must be the setup cell: run `make sync`"
    assert SETUP_TAG in setup.metadata.get("tags", []), "the setup cell is hidden in the book"


def _run_setup(monkeypatch, on_colab):
    import subprocess
    import sys
    import types

    from replab.notebooks import setup_cell_source

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **k: calls.append(cmd))
    monkeypatch.setattr(sys, "path", list(sys.path))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(setup_cell_source(ROOT), {})
    return calls


def test_the_setup_cell_does_nothing_outside_colab(monkeypatch):
    assert _run_setup(monkeypatch, on_colab=False) == []


def test_on_colab_the_setup_cell_installs_from_the_repository_setting(monkeypatch):
    from replab.notebooks import repository

    url, branch = repository(ROOT)
    clone, install = _run_setup(monkeypatch, on_colab=True)
    assert clone[:2] == ["git", "clone"] and url in clone and clone[clone.index("--branch") + 1] == branch
    assert install[1:5] == ["-m", "pip", "install", "--quiet"] and install[-1] == clone[-1]


def test_the_repository_address_has_one_setting():
    from replab.notebooks import repository

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url, branch = repository(ROOT)
    assert url == config["repository"]["url"] and config["html"]["use_repository_button"]
    assert config["launch_buttons"]["colab_url"] and config["launch_buttons"]["binderhub_url"]
    readme = (ROOT / "README.md").read_text()
    # The README claims no address of its own: it names the setting the book's buttons and pages use.
    assert "github.io" not in readme and url not in readme and "repository.url" in readme


@pytest.mark.parametrize("config", ["title: t\n", "repository:\n  url: github.com/x/y\n", "repository: 3\n"])
def test_a_missing_or_bad_repository_setting_is_named(tmp_path, config):
    from replab.notebooks import repository

    (tmp_path / "_config.yml").write_text(config)
    with pytest.raises(ValueError, match="repository.url must be"):
        repository(tmp_path)
