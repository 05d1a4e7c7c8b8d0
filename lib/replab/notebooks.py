"""The book's notebooks: finding them, reading their ``parameters`` cell, and executing them with papermill.

Notebooks are MyST Markdown files (jupytext ``md:myst``) under ``notebooks/``. Papermill does not read text
notebooks, so :func:`execute` converts the source with jupytext in memory and hands the notebook object to
papermill, which injects the parameters after the cell tagged ``parameters``.
"""
from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import repo_root
from .profiles import PROFILES

__all__ = ["Page", "notebooks_root", "discover", "find", "read_parameters", "parse_value", "execute"]


def notebooks_root() -> Path:
    """The ``notebooks/`` folder of the repository (working directory first, then the package's checkout)."""
    root = repo_root() or repo_root(Path(__file__).parent)
    if root is None:
        raise FileNotFoundError("cannot find the replab repository (a folder with _config.yml and lib/replab); "
                                "run from inside the repository or pass the notebook's path")
    return root / "notebooks"


@dataclass(frozen=True)
class Page:
    """One notebook of the book."""

    path: Path

    @property
    def name(self) -> str:
        """The page id, e.g. ``peste2017/01-active-components`` (path below ``notebooks/``, no suffix)."""
        try:
            rel = self.path.resolve().relative_to(notebooks_root().resolve())
        except (ValueError, FileNotFoundError):
            rel = Path(self.path.name)
        return rel.with_suffix("").as_posix()

    def parameters(self) -> dict[str, Any]:
        return read_parameters(self.path)


def discover(root: Path | None = None) -> list[Page]:
    """Every MyST notebook under ``root`` (default :func:`notebooks_root`), sorted by page id."""
    root = Path(root) if root is not None else notebooks_root()
    pages = []
    for path in sorted(root.rglob("*.md")):
        if any(part.startswith((".", "_")) for part in path.relative_to(root).parts):
            continue
        head = path.read_text(encoding="utf-8")[:400]
        if "jupytext" in head or "kernelspec" in head:
            pages.append(Page(path))
    return pages


def find(spec: str | Path) -> Page:
    """Resolve a notebook given as a path (``notebooks/x/y.md``) or a page id (``x/y``)."""
    path = Path(spec)
    if path.suffix == ".ipynb":
        path = path.with_suffix(".md")
    if path.is_file():
        return Page(path)
    pages = discover()
    want = str(spec).removeprefix("notebooks/").removesuffix(".md").removesuffix(".ipynb")
    for page in pages:
        if page.name == want:
            return page
    known = ", ".join(p.name for p in pages)
    raise FileNotFoundError(f"unknown notebook {str(spec)!r}; known notebooks: {known}")


def _parameters_cell(nb) -> Any:
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    return None


def read_parameters(path: Path) -> dict[str, Any]:
    """The names and default values assigned in the notebook's cell tagged ``parameters``."""
    import jupytext

    nb = jupytext.read(str(path))
    cell = _parameters_cell(nb)
    if cell is None:
        raise ValueError(f"{path}: no code cell is tagged 'parameters'")
    out: dict[str, Any] = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.literal_eval(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            out[node.target.id] = ast.literal_eval(node.value)
    return out


def parse_value(text: str) -> Any:
    """A command-line parameter value: a Python literal when it parses as one (``16``, ``0.5``, ``None``,
    ``[1, 2]``, ``True``), else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def check_parameters(page: Page, parameters: dict[str, Any]) -> None:
    """Raise a ``ValueError`` for a parameter the page does not declare or an unknown profile."""
    declared = page.parameters()
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for notebook {page.name}; "
                         f"it declares: {', '.join(sorted(declared))}")
    profile = parameters.get("profile", declared.get("profile"))
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")


def execute(spec: str | Path, output: str | Path, parameters: dict[str, Any] | None = None,
            timeout: int | None = None, env: dict[str, str] | None = None, log_output: bool = False) -> Path:
    """Execute a notebook through papermill with ``parameters`` injected; returns the executed ``.ipynb``.

    The kernel runs in the notebook's own folder, as in the book build. Raises
    ``papermill.PapermillExecutionError`` when a cell fails.
    """
    import jupytext
    import papermill

    page = find(spec)
    parameters = dict(parameters or {})
    check_parameters(page, parameters)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(str(page.path))
    # Figures show inline in the executed notebook even when the caller's environment says MPLBACKEND=agg.
    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", **(env or {})}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        papermill.execute_notebook(nb, str(output), parameters=parameters, cwd=str(page.path.parent),
                                   kernel_name="python3", execution_timeout=timeout, progress_bar=False,
                                   log_output=log_output)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return output
