"""Building the book: execute every page (two at a time) into Jupyter Book's cache, then build the HTML.

Jupyter Book 1 executes pages one by one and keys its cache on code cells only, so a change to the library
would go unnoticed. :func:`build` therefore

1. clears the execution cache (and the recorded claims) whenever the fingerprint of the library, the shipped
   data or the pinned requirements changes, so no page shows results computed by older code;
2. fills that cache in parallel with jupyter-cache's ``local-parallel`` executor (one process per core), with
   ``OMP_NUM_THREADS=1`` so two kernels share two cores without oversubscription;
3. writes ``book/scorecard.md`` from the claims the pages recorded;
4. runs ``jupyter-book build``, which finds every page cached and fails on any warning or cell error;
5. prints each page's execution time.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import claims as _claims
from .cache import atomic_write_bytes, repo_root
from .notebooks import discover

__all__ = ["content_fingerprint", "execute_pages", "write_scorecard", "build"]

_FINGERPRINT_FILE = "replab-fingerprint.txt"


def book_root() -> Path:
    root = repo_root() or repo_root(Path(__file__).parent)
    if root is None:
        raise FileNotFoundError("run the book build from inside the replab repository")
    return root


def content_fingerprint(root: Path) -> str:
    """SHA-256 over the library sources, the shipped data and the pinned requirements."""
    h = hashlib.sha256()
    files = sorted((root / "lib" / "replab").rglob("*.py")) + sorted((root / "lib" / "replab").rglob("*.toml"))
    files += sorted(p for p in (root / "data").rglob("*") if p.is_file())
    files += [p for p in (root / "requirements.txt",) if p.is_file()]
    for path in files:
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _page_claims_file(claims_dir: Path, page_name: str) -> Path:
    return claims_dir / (page_name.replace("/", "__") + ".json")


def execute_pages(root: Path, cache_dir: Path, claims_dir: Path, timeout: int = 3600) -> dict:
    """Execute every page that is not cached into ``cache_dir``; returns ``{page: seconds}`` for all pages.

    Raises ``RuntimeError`` listing the pages whose execution failed, with their tracebacks.
    """
    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor

    fingerprint = content_fingerprint(root)
    stamp = cache_dir / _FINGERPRINT_FILE
    if cache_dir.exists() and (not stamp.is_file() or stamp.read_text() != fingerprint):
        print("replab book: library, data or requirements changed since the last build; re-executing every page")
        shutil.rmtree(cache_dir)
        shutil.rmtree(claims_dir, ignore_errors=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = get_cache(str(cache_dir))
    stamp.write_text(fingerprint)

    pages = discover(root / "notebooks")
    known = {str(p.path.resolve()) for p in pages}
    # Claims of a page that no longer exists would stay on the scorecard.
    current = {_page_claims_file(claims_dir, p.name).name for p in pages}
    for stale_claims in claims_dir.glob("*.json"):
        if stale_claims.name not in current:
            stale_claims.unlink()
    for record in cache.list_project_records():
        if record.uri not in known:
            cache.remove_nb_from_project(record.uri)
    for page in pages:
        cache.add_nb_to_project(str(page.path.resolve()), read_data={"name": "myst_nb_md", "type": "plugin"})
        # A page whose claims are missing re-executes: the scorecard must reflect the executed pages.
        if not _page_claims_file(claims_dir, page.name).is_file():
            rec = cache.get_cached_project_nb(str(page.path.resolve()))
            if rec is not None:
                cache.remove_cache(rec.pk)
    stale = [r.uri for r in cache.list_project_records() if cache.get_cached_project_nb(r.uri) is None]
    print(f"replab book: {len(pages)} pages, {len(stale)} to execute, {len(pages) - len(stale)} cached")

    env = {"REPLAB_BOOK": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "REPLAB_QUIET": "1",
           # Kernels show figures inline; an inherited MPLBACKEND=agg would silently drop them.
           "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "REPLAB_CLAIMS": str(claims_dir), "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    os.environ.update(env)
    executor = load_executor("local-parallel", cache=cache)
    result = executor.run_and_cache(timeout=timeout, allow_errors=False)
    failed = list(result.excepted) + list(result.errored)
    if failed:
        details = []
        for uri in failed:
            rec = cache.get_project_record(uri)
            details.append(f"--- {Path(uri).relative_to(root)} ---\n{rec.traceback or '(no traceback recorded)'}")
        raise RuntimeError("pages failed to execute:\n" + "\n".join(details))
    times = {}
    for page in pages:
        rec = cache.get_cached_project_nb(str(page.path.resolve()))
        cached = cache.get_cache_record(rec.pk) if rec is not None else None
        times[page.name] = (cached.data or {}).get("execution_seconds") if cached is not None else None
    return times


def write_scorecard(root: Path, claims_dir: Path) -> Path:
    """Write ``book/scorecard.md`` from the claims of the last build, with a column for every other profile whose
    runs are recorded under ``results/<profile>/claims``.

    The committed scorecard is never replaced by an empty one: a missing ``claims_dir`` (a fresh checkout, a
    mistyped ``--claims``) raises ``FileNotFoundError``, a folder without claims or with a damaged record file a
    ``ValueError``. The page is written atomically, so readers see the old one or the whole new one."""
    claims_dir = Path(claims_dir)
    if not claims_dir.exists():
        raise FileNotFoundError(f"claims folder {claims_dir} does not exist: execute the pages first "
                                f"(`make book`, or `replab run-all`), or name a folder of claims with --claims")
    if not claims_dir.is_dir():
        raise ValueError(f"claims folder {claims_dir} is not a folder")
    recorded = _claims.load_all(claims_dir)
    if not recorded:
        raise ValueError(f"claims folder {claims_dir} holds no claim records (*.json written by the pages); "
                         f"book/scorecard.md is left as it is")
    built = {c.profile for c in recorded}
    others = {p: cs for p, cs in _claims.recorded_profiles(root / "results").items() if p not in built}
    figure = root / "book" / "scorecard-forest.svg"
    atomic_write_bytes(figure, _forest_svg(recorded))
    text = _claims.scorecard_markdown(recorded, others, figure=figure.name)
    out = root / "book" / "scorecard.md"
    atomic_write_bytes(out, text.encode("utf-8"))
    return out


def _forest_svg(recorded) -> bytes:
    """The scorecard's forest plot as SVG bytes, the same for the same claims (no date, fixed ids)."""
    import io

    import matplotlib

    matplotlib.use("agg", force=False)
    import matplotlib.pyplot as plt

    from .plotting.claims import forest

    with matplotlib.rc_context({"svg.hashsalt": "replab-scorecard", "svg.fonttype": "none"}):
        fig = forest(recorded)
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
        plt.close(fig)
    return buf.getvalue()


def _install_static(root: Path) -> None:
    """Copy plotly.js into the book's static files, so interactive figures work offline without a kernel."""
    from .plotting.interactive import plotly_js_path

    static = root / "book" / "_static"
    static.mkdir(parents=True, exist_ok=True)
    target = static / "plotly.min.js"
    source = Path(plotly_js_path())
    if not target.is_file() or target.stat().st_size != source.stat().st_size:
        shutil.copyfile(source, target)


def build(strict: bool = True, timeout: int = 3600) -> int:
    """Execute, score and build the whole book; returns a process exit code."""
    root = book_root()
    build_dir = root / "_build"
    cache_dir = build_dir / ".jupyter_cache"
    claims_dir = build_dir / "claims"
    os.environ.setdefault("REPLAB_CACHE", str(root / ".cache" / "replab"))
    t0 = time.time()
    try:
        times = execute_pages(root, cache_dir, claims_dir, timeout=timeout)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    t_exec = time.time() - t0
    try:
        write_scorecard(root, claims_dir)
    except (ValueError, FileNotFoundError) as exc:
        print(f"replab book: error: {exc}", file=sys.stderr)
        return 1
    _install_static(root)
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")
    if jb is None:
        print("replab book: jupyter-book is not installed (pip install -r requirements.txt)", file=sys.stderr)
        return 1
    cmd = [jb, "build", str(root), "-n", "--keep-going"] + (["-W"] if strict else [])
    t1 = time.time()
    rc = subprocess.call(cmd, cwd=root)
    t_build = time.time() - t1
    print("\nreplab book: execution time per page (seconds; cached pages show the time of their last run)")
    for name, secs in sorted(times.items()):
        print(f"  {name:55s} {secs:8.1f}" if secs is not None else f"  {name:55s}      n/a")
    print(f"replab book: executing {t_exec:.0f} s, building HTML {t_build:.0f} s, exit code {rc}")
    (build_dir / "execution-times.json").write_text(json.dumps(times, indent=1))
    return rc
