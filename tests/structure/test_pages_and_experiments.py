"""The shape the book keeps: typed experiments, thin pages, no private seams (see the developers' guide).

Each check is parametrised by page or module, so a failure names the one that breaks the rule.
"""
from __future__ import annotations

import ast
import dataclasses
import itertools
import re
from pathlib import Path

import pytest

from replab import notebooks, profiles

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "lib" / "replab"
PAGES = notebooks.discover(ROOT / "notebooks")
SHARED_LINES_LIMIT = 8      # the most consecutive identical code lines two pages may share


def _code_cells(page) -> list[str]:
    """Source of the page's code cells, without the parameters cell and the hidden setup cell."""
    import jupytext

    out = []
    for cell in jupytext.read(str(page.path)).cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type == "code" and "parameters" not in tags and notebooks.SETUP_TAG not in tags:
            out.append(cell.source)
    return out


def _code_lines(page) -> list[str]:
    lines = []
    for source in _code_cells(page):
        lines += [line.strip() for line in source.splitlines()
                  if line.strip() and not line.strip().startswith("#")]
    return lines


def test_every_experiment_is_typed_and_every_table_checks():
    checked = profiles.check_all()
    assert "datasets" in checked
    for name in checked:
        table = profiles.table(name)
        assert set(table) == set(profiles.names())


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_parameters_cell_is_in_sync(page):
    import jupytext

    want = notebooks.parameters_cell_source(page)
    cell = next(c for c in jupytext.read(str(page.path)).cells
                if "parameters" in c.get("metadata", {}).get("tags", []))
    assert cell.source.rstrip("\n") == want.rstrip("\n"), f"run `make sync` ({page.name})"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_defines_no_function_and_loops_over_nothing(page):
    for source in _code_cells(page):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue  # an IPython magic: no Python to look at
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)), \
                f"{page.name} defines {getattr(node, 'name', 'a lambda')}: move it into the library"
            assert not isinstance(node, (ast.For, ast.While, ast.AsyncFor)), \
                f"{page.name} has a loop at line {node.lineno} of a cell: one library call per section"


def _longest_common_run(a: list[str], b: list[str]) -> tuple[int, str]:
    best, where = 0, ""
    prev = [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        cur = [0] * (len(b) + 1)
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                cur[j] = prev[j - 1] + 1
                if cur[j] > best:
                    best, where = cur[j], a[i - 1]
        prev = cur
    return best, where


@pytest.mark.parametrize("pair", list(itertools.combinations(PAGES, 2)),
                         ids=[f"{a.name}~{b.name}" for a, b in itertools.combinations(PAGES, 2)])
def test_no_two_pages_share_a_copied_block(pair):
    a, b = pair
    n, line = _longest_common_run(_code_lines(a), _code_lines(b))
    assert n <= SHARED_LINES_LIMIT, f"{a.name} and {b.name} share {n} consecutive code lines (ending at {line!r})"


@pytest.mark.parametrize("path", sorted(LIB.rglob("*.py")), ids=lambda p: str(p.relative_to(LIB)))
def test_no_private_name_of_train_is_imported_outside_it(path):
    if path.is_relative_to(LIB / "train"):
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and re.fullmatch(r"(replab\.)?train(\..*)?", node.module):
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"{path.name} imports {private} from {node.module}"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "train":
            assert not node.attr.startswith("_") or node.attr.startswith("__"), \
                f"{path.name}:{node.lineno} uses train.{node.attr}"


@pytest.mark.parametrize("path", sorted((LIB / "experiments").glob("*.py")), ids=lambda p: p.name)
def test_experiment_modules_are_short_and_take_typed_sizes(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 350, f"{path.name} has {len(text.splitlines())} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            positional = node.args.posonlyargs + node.args.args
            assert len(positional) <= 5, f"{path.name}: {node.name} takes {len(positional)} positional arguments"
            for arg in positional + node.args.kwonlyargs:
                ann = ast.unparse(arg.annotation) if arg.annotation is not None else ""
                assert "Sizes" not in ann and "Mapping" not in ann, f"{path.name}: {node.name}({arg.arg}: {ann})"


def test_every_page_experiment_field_has_a_meaning():
    for page in PAGES:
        for cls in profiles.page_experiments(page.name):
            for f in dataclasses.fields(cls):
                assert f.metadata.get("meaning"), (cls, f.name)
