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
