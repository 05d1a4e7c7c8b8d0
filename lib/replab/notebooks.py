"""The book's notebooks: finding them, reading their ``parameters`` cell, and executing them with papermill.

Notebooks are MyST Markdown files (jupytext ``md:myst``) under ``notebooks/``. Papermill does not read text
notebooks, so :func:`execute` converts the source with jupytext in memory and hands the notebook object to
papermill, which injects the parameters after the cell tagged ``parameters``.
"""
from __future__ import annotations

import ast
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import repo_root
from . import profiles

__all__ = ["Page", "notebooks_root", "discover", "find", "read_parameters", "parameter_examples", "parse_value",
           "check_parameters", "check_output", "execute", "repository", "SETUP_TAG", "setup_cell_source",
           "write_setup_cells", "parameters_cell_source", "write_parameter_cells"]


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


def _parameter_nodes(nb, path: Path) -> list:
    cell = _parameters_cell(nb)
    if cell is None:
        raise ValueError(f"{path}: no code cell is tagged 'parameters'")
    return ast.parse(cell.source).body


def read_parameters(path: Path) -> dict[str, Any]:
    """The names and default values assigned in the notebook's cell tagged ``parameters``."""
    import jupytext

    out: dict[str, Any] = {}
    for node in _parameter_nodes(jupytext.read(str(path)), path):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.literal_eval(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            out[node.target.id] = ast.literal_eval(node.value)
    return out


# One example value per type a parameter annotation may name (``n: int | None = None``).
_ANNOTATION_EXAMPLES = {"int": 0, "float": 0.0, "str": "", "bool": False, "None": None}


def _annotation_examples(node: ast.expr, path: Path, name: str) -> list:
    """Example values of the types an annotation allows: ``int | None`` -> [0, None], ``list[str]`` -> [[""]]."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _annotation_examples(node.left, path, name) + _annotation_examples(node.right, path, name)
    if isinstance(node, ast.Constant) and node.value is None:
        return [None]
    if isinstance(node, ast.Name) and node.id in _ANNOTATION_EXAMPLES:
        return [_ANNOTATION_EXAMPLES[node.id]]
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "list":
        return [_annotation_examples(node.slice, path, name)]
    raise ValueError(f"{path}: parameter {name!r} has an annotation replab cannot read: {ast.unparse(node)} "
                     f"(use int, float, str, bool, None, list[...] and |)")


def parameter_examples(page: Page) -> dict[str, list]:
    """For every parameter of ``page`` that is not a size of its experiments, example values of the types it
    takes: its default, or the types its annotation names (``source: str | None = None``). An empty list means
    the page does not say. Sizes are checked by :func:`replab.profiles.check_value` against their dataclass."""
    import jupytext

    nb = jupytext.read(str(page.path))
    defaults = read_parameters(page.path)
    examples: dict[str, list] = {name: [value] if value is not None else [] for name, value in defaults.items()}
    for node in _parameter_nodes(nb, page.path):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            examples[node.target.id] = _annotation_examples(node.annotation, page.path, node.target.id)
    return examples


def _fits(value: Any, example: Any) -> bool:
    """Whether ``value`` has the type of ``example`` (an int is a float; a bool is neither; lists element-wise)."""
    if isinstance(example, bool) or example is None:
        return type(value) is type(example)
    if isinstance(example, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(example, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(example, (list, tuple)):
        return isinstance(value, (list, tuple)) and (not example or all(any(_fits(v, e) for e in example)
                                                                        for v in value))
    return isinstance(value, type(example))


_TYPE_NAMES = {bool: ("True or False", "True/False values"), int: ("an integer", "integers"),
               float: ("a number", "numbers"), str: ("a string", "strings"), type(None): ("None", "None")}


def _describe(example: Any, plural: bool = False) -> str:
    if isinstance(example, (list, tuple)):
        inner = sorted({_describe(e, plural=True) for e in example})
        return ("lists" if plural else "a list") + (f" of {' or '.join(inner)}" if inner else "")
    return _TYPE_NAMES.get(type(example), (type(example).__name__,) * 2)[plural]


def _one_of(words: list[str]) -> str:
    words = list(dict.fromkeys(words))
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def parse_value(text: str) -> Any:
    """A command-line parameter value: a Python literal when it parses as one (``16``, ``0.5``, ``None``,
    ``[1, 2]``, ``True``), else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def check_parameters(page: Page, parameters: dict[str, Any]) -> None:
    """Raise a ``ValueError`` for a parameter the page does not declare, an unknown profile, or a value whose
    type differs from what the page declares (:func:`parameter_examples`): checked before any kernel starts."""
    declared = page.parameters()
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for notebook {page.name}; "
                         f"it declares: {', '.join(sorted(declared))}")
    profiles.check_profile(parameters.get("profile", declared.get("profile")))
    sizes = {f.name for cls in profiles.page_experiments(page.name) for f in dataclasses.fields(cls)}
    examples = parameter_examples(page)
    for name, value in parameters.items():
        if name in sizes:
            profiles.check_value(page.name, name, value)
            continue
        allowed = examples[name] + ([None] if declared[name] is None else [])
        if examples[name] and not any(_fits(value, e) for e in allowed):
            wanted = _one_of([_describe(e) for e in allowed])
            raise ValueError(f"parameter {name!r} of notebook {page.name} takes {wanted} "
                             f"(default {declared[name]!r}), got {value!r} ({type(value).__name__})")


def check_output(output: str | Path, page: Page | None = None, make_parent: bool = False) -> Path:
    """Check, before anything runs, that the executed notebook can be written to ``output``; returns it.

    ``output`` must end in ``.ipynb`` and its folder must exist (or is created with ``make_parent``). An existing
    file there is replaced only when it is a notebook written by an earlier run (papermill's metadata), never a
    page's own source or anything else: a ``ValueError`` names the problem."""
    import json

    output = Path(output)
    if output.is_dir():
        raise ValueError(f"output {output} is a folder; name a notebook file in it (ending in .ipynb)")
    if output.suffix != ".ipynb":
        raise ValueError(f"output {output} must be a notebook file ending in .ipynb")
    parent = output.parent
    if not parent.is_dir():
        if parent.exists() or not make_parent:
            raise ValueError(f"output folder {parent} does not exist (or is not a folder); create it first")
        parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise ValueError(f"output folder {parent} is not writable")
    if output.exists() or output.is_symlink():
        sources = set()
        if page is not None:
            sources = {page.path.resolve(), page.path.with_suffix(".ipynb").resolve()}
        if output.resolve() in sources:
            raise ValueError(f"output {output} is the page's own source; choose another path")
        try:
            metadata = json.loads(output.read_text(encoding="utf-8")).get("metadata", {})
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            raise ValueError(f"output {output} exists and is not a notebook; not overwriting it "
                             f"(remove it or choose another path)") from None
        if not isinstance(metadata, dict) or "papermill" not in metadata:
            raise ValueError(f"output {output} exists and is a notebook that no earlier run wrote; not "
                             f"overwriting it (remove it or choose another path)")
    return output


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
    output = check_output(output, page, make_parent=True)
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


# The cell after every page's parameters cell: on Colab it installs replab from the book's repository; the book
# hides it (Jupyter Book removes cells tagged remove-cell) and it does nothing anywhere else.
SETUP_TAG = "remove-cell"
_SETUP_MARK = "# Colab only"
_SETUP_TEMPLATE = """{mark}: install replab from the book's repository; anywhere else this cell does nothing.
# Written by `make sync` from the `repository` setting of _config.yml.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    url, branch, checkout = "{url}", "{branch}", "/content/replab"
    if not os.path.isdir(checkout):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", branch, url, checkout], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", checkout], check=True)
    sys.path.insert(0, os.path.join(checkout, "lib"))"""


def repository(root: Path | None = None) -> tuple[str, str]:
    """The book's repository address and branch: the one ``repository`` setting of ``_config.yml``, which the
    book's buttons (repository, issues, Binder, Colab) and every page's setup cell use."""
    import yaml

    root = Path(root) if root is not None else notebooks_root().parent
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    repo = config.get("repository") if isinstance(config, dict) else None
    url, branch = (repo.get("url"), repo.get("branch", "main")) if isinstance(repo, dict) else (None, None)
    if not isinstance(url, str) or not url.startswith("https://"):
        raise ValueError(f"{root / '_config.yml'}: repository.url must be the repository's https address, "
                         f"got {url!r}")
    return url.rstrip("/"), str(branch)


def setup_cell_source(root: Path | None = None) -> str:
    """The source of the setup cell, from :func:`repository`."""
    url, branch = repository(root)
    return _SETUP_TEMPLATE.format(mark=_SETUP_MARK, url=url, branch=branch)


def write_setup_cells(root: Path | None = None) -> list[Path]:
    """Put the setup cell right after the parameters cell of every page's MyST source (replacing an older one);
    returns the pages changed. Re-pair them with jupytext afterwards (``make sync`` does both)."""
    root = Path(root) if root is not None else notebooks_root().parent
    cell = f"```{{code-cell}} ipython3\n:tags: [{SETUP_TAG}]\n\n{setup_cell_source(root)}\n```\n"
    changed = []
    for page in discover(root / "notebooks"):
        text = page.path.read_text(encoding="utf-8")
        start = text.find("```{code-cell} ipython3\n:tags: [parameters]")
        if start < 0:
            raise ValueError(f"{page.path}: no code cell is tagged 'parameters'")
        end = text.index("\n```\n", start) + len("\n```\n")
        rest = text[end:]
        old = f"\n```{{code-cell}} ipython3\n:tags: [{SETUP_TAG}]\n\n{_SETUP_MARK}"
        if rest.startswith(old):
            rest = rest[rest.index("\n```\n", 1) + len("\n```\n"):]
        new = text[:end] + "\n" + cell + rest
        if new != text:
            page.path.write_text(new, encoding="utf-8")
            changed.append(page.path)
    return changed


def _parameters_span(text: str, path: Path) -> tuple[int, int]:
    """Start and end offsets of the body of the MyST cell tagged ``parameters`` in ``text``."""
    head = "```{code-cell} ipython3\n:tags: [parameters]\n"
    start = text.find(head)
    if start < 0:
        raise ValueError(f"{path}: no code cell is tagged 'parameters'")
    body = text.index("\n", start + len(head)) + 1  # the blank line after the cell's options
    return body, text.index("\n```\n", body)


def parameters_cell_source(page: Page) -> str:
    """The body ``page``'s parameters cell should have: its hand-written lines (``profile``, ``seed``, ...) then
    the sizes of its experiments as :func:`replab.profiles.parameters_block` writes them."""
    text = page.path.read_text(encoding="utf-8")
    start, end = _parameters_span(text, page.path)
    body = text[start:end]
    mark = body.find(profiles.PARAMETERS_MARK)
    hand = (body if mark < 0 else body[:mark]).rstrip("\n")
    generated = "stand_ins"   # the generated block's first line, once written
    hand = "\n".join(line for line in hand.split("\n") if not line.startswith(generated))
    block = profiles.parameters_block(page.name)
    sizes = {f.name for cls in profiles.page_experiments(page.name) for f in dataclasses.fields(cls)}
    twice = sorted(sizes & {node.targets[0].id for node in ast.parse(hand).body
                            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)})
    if twice:
        raise ValueError(f"{page.path}: parameter(s) {twice} are sizes of the page's experiments and are written "
                         f"by `make sync`; remove them from the hand-written part of the parameters cell")
    return hand + ("\n" + block if block else "")


def write_parameter_cells(root: Path | None = None, prefix: str = "") -> list[Path]:
    """Rewrite the generated part of the parameters cell of every page whose id starts with ``prefix``
    (:func:`parameters_cell_source`); returns the pages changed. Re-pair them with jupytext afterwards (``make
    sync`` does both)."""
    changed = []
    for page in discover(Path(root) / "notebooks" if root is not None else None):
        if not page.name.startswith(prefix):
            continue
        text = page.path.read_text(encoding="utf-8")
        start, end = _parameters_span(text, page.path)
        new = text[:start] + parameters_cell_source(page) + text[end:]
        if new != text:
            page.path.write_text(new, encoding="utf-8")
            changed.append(page.path)
    return changed
