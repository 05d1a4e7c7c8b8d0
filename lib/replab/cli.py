"""The ``replab`` command: run a page with other parameters, list pages, manage the cache, build the book.

    replab run NOTEBOOK [-p NAME VALUE ...] [--profile PROFILE] [-o OUT]
    replab list
    replab cache ls | clear [--kind KIND]
    replab scorecard
    replab run-all [PAGE ...] [--profile full] [--results results/full]
    replab book [--no-strict]
    replab similarity NAME=PATH ... -o scores.csv [--metrics ...] [--checkpoint DIR]
    replab data fetch NAME ... | verify [NAME ...] | ls
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import profiles

__all__ = ["main"]


def _cmd_run(args) -> int:
    from . import notebooks

    page = notebooks.find(args.notebook)
    params = {name: notebooks.parse_value(value) for name, value in (args.parameter or [])}
    if args.profile is not None:
        params["profile"] = args.profile
    notebooks.check_parameters(page, params)
    out = Path(args.output) if args.output else Path("_build") / "runs" / f"{page.name.replace('/', '__')}.ipynb"
    notebooks.check_output(out, page, make_parent=args.output is None)
    print(f"replab run: {page.name} with {params or 'its defaults'} -> {out}")
    import papermill

    try:
        notebooks.execute(page.path, out, params, timeout=args.timeout, log_output=args.log_output)
    except papermill.PapermillExecutionError as exc:
        print(f"replab run: {page.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}", file=sys.stderr)
        print(f"replab run: the partly executed notebook is {out}", file=sys.stderr)
        return 1
    print(f"replab run: wrote {out}")
    return 0


def _cmd_list(args) -> int:
    """Every page with its parameters; each size with its type, meaning and value at every profile."""
    from . import notebooks

    print("profiles: " + "; ".join(f"{p} ({profiles.meaning(p)})" for p in profiles.names()))
    for page in notebooks.discover():
        print(page.name)
        sizes = {}
        for cls in profiles.page_experiments(page.name):
            for f in profiles.fields(cls):
                sizes.setdefault(f.name, f)
        for name, value in page.parameters().items():
            f = sizes.get(name)
            if f is None:
                print(f"    {name} = {value!r}")
                continue
            unit = f" [{f.unit}]" if f.unit else ""
            print(f"    {name} ({f.type}){unit}: {f.meaning}")
            print("        " + ", ".join(f"{p}={v!r}" for p, v in f.values.items()))
    return 0


def _cmd_cache(args) -> int:
    from .cache import ArtifactCache

    cache = ArtifactCache()
    if args.action == "ls":
        entries = cache.entries(args.kind)
        total = sum(e["bytes"] for e in entries)
        print(f"{cache.root}: {len(entries)} artifacts, {total / 2**20:.1f} MiB")
        for e in entries:
            flag = "" if e["intact"] else "  DAMAGED (recomputed when next used)"
            print(f"  {e['kind']:16s} {e['key']}  {e['bytes'] / 2**20:8.2f} MiB{flag}")
    else:
        n = cache.clear(args.kind)
        print(f"{cache.root}: removed {n} artifacts")
    return 0


def _cmd_scorecard(args) -> int:
    from .book import book_root, write_scorecard
    from .claims import claims_dir

    path = write_scorecard(book_root(), Path(args.claims) if args.claims else claims_dir())
    print(f"replab scorecard: wrote {path}")
    return 0


def _cmd_run_all(args) -> int:
    """Execute every page (or the named ones) at one profile and keep their claims; with ``--record`` under
    ``results/<profile>/`` with a run record per page (:mod:`replab.runs`)."""
    import os
    import time

    import papermill

    from . import notebooks, runs

    profiles.check_profile(args.profile)
    pages = [notebooks.find(p) for p in args.pages] if args.pages else notebooks.discover()
    if args.results:
        results = Path(args.results)
    else:
        results = Path("results" if args.record else "_build") / args.profile
    claims_dir = results / "claims"
    out_dir = Path(args.output_dir) if args.output_dir else Path("_build") / "run-all" / args.profile
    info = runs.provenance() if args.record else None
    if info is not None and info["dirty"]:
        print("replab run-all: the working tree has uncommitted changes; the records name the commit and say so",
              file=sys.stderr)
    failed, skipped = [], []
    parameters = {"profile": args.profile, **({"stand_ins": True} if args.stand_ins else {})}
    began = time.perf_counter()
    for page in pages:
        if args.time_limit is not None and time.perf_counter() - began >= args.time_limit:
            skipped.append(page.name)   # no page is started past the limit; the ones run keep their records
            continue
        out = out_dir / f"{page.name.replace('/', '__')}.ipynb"
        print(f"replab run-all: {page.name} at {args.profile} -> {out}")
        start = time.perf_counter()
        try:
            notebooks.execute(page.path, out, parameters, timeout=args.timeout,
                              env={"REPLAB_CLAIMS": str(claims_dir.resolve())})
            ok = True
        except papermill.PapermillExecutionError as exc:
            print(f"replab run-all: {page.name} failed: {exc.ename}: {exc.evalue}", file=sys.stderr)
            failed.append(page.name)
            ok = False
        if info is not None:
            runs.record_run(results, page.name, args.profile, time.perf_counter() - start, ok,
                            {**info, "stand_ins": bool(args.stand_ins)})
    ran = len(pages) - len(skipped)
    print(f"replab run-all: {ran - len(failed)} of {ran} pages ran; claims in {claims_dir}"
          + (f"; failed: {', '.join(failed)}" if failed else "")
          + (f"; not started (past --time-limit): {', '.join(skipped)}" if skipped else ""))
    os.sync()
    return 1 if failed else 0


def _cmd_book(args) -> int:
    from .book import build

    return build(strict=not args.no_strict, timeout=args.timeout)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="replab", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="execute a notebook through papermill")
    r.add_argument("notebook", help="path (notebooks/x/y.md) or page id (x/y)")
    r.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="set a parameter (a Python literal, or a string)")
    r.add_argument("--profile", default=None, help=f"one of {', '.join(profiles.names())}")
    r.add_argument("-o", "--output", help="where to write the executed notebook (.ipynb, in an existing folder; "
                   "replaces only a notebook an earlier run wrote)")
    r.add_argument("--timeout", type=int, default=None, help="seconds per cell")
    r.add_argument("--log-output", action="store_true", help="echo the notebook's output")
    r.set_defaults(func=_cmd_run)

    sub.add_parser("list", help="every notebook with its parameters and defaults").set_defaults(func=_cmd_list)

    c = sub.add_parser("cache", help="list or clear the artifact cache")
    c.add_argument("action", choices=["ls", "clear"])
    c.add_argument("--kind", help="only artifacts of this kind")
    c.set_defaults(func=_cmd_cache)

    s = sub.add_parser("scorecard", help="write book/scorecard.md from recorded claims")
    s.add_argument("--claims", help="folder of claim records (default: _build/claims)")
    s.set_defaults(func=_cmd_scorecard)

    a = sub.add_parser("run-all", help="execute every page at one profile and keep the claims (e.g. medium on a GPU)")
    a.add_argument("pages", nargs="*", help="page ids or paths (default: every page)")
    a.add_argument("--profile", default="full", help=f"one of {', '.join(profiles.names())}")
    a.add_argument("--record", action="store_true", help="keep claims and run records (commit, device, torch, "
                   "wall time) under results/<profile>/, for the scorecard's column of that profile")
    a.add_argument("--results", default=None, help="where claims are kept (default: results/<profile> with "
                   "--record, else _build/<profile>)")
    a.add_argument("--output-dir", default=None, help="where executed notebooks go (default: "
                   "_build/run-all/<profile>; not committed)")
    a.add_argument("--timeout", type=int, default=None, help="seconds per cell")
    a.add_argument("--stand-ins", action="store_true", help="run on offline stand-ins where a paper dataset is "
                   "missing (every claim, figure and run record then says so)")
    a.add_argument("--time-limit", type=float, default=None, help="start no page after this many seconds")
    a.set_defaults(func=_cmd_run_all)

    b = sub.add_parser("book", help="execute every page in parallel and build the HTML book")
    b.add_argument("--no-strict", action="store_true", help="do not turn warnings into errors")
    b.add_argument("--timeout", type=int, default=3600, help="seconds per page")
    b.set_defaults(func=_cmd_book)

    from .data.command import add_subcommand as _add_data
    from .similarity.command import add_subcommand as _add_similarity

    _add_similarity(sub)  # all models against all models (replab.similarity.command)
    _add_data(sub)        # fetch, verify and list the papers' datasets (replab.data.command)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"replab {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
