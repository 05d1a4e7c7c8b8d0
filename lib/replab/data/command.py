"""The ``replab data`` command: fetch the real datasets' official files, re-check them, list what serves which page.

    replab data fetch NAME [NAME ...] [--root DIR] [--force] [--url ADDRESS] [--no-progress]
    replab data verify [NAME ...] [--root DIR]
    replab data ls [--root DIR]

The data root is ``--root`` or the ``REPLAB_DATA`` folder; see :mod:`replab.data.fetch` for what fetch does.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["add_subcommand", "run"]


def add_subcommand(sub) -> None:
    """Add ``data`` (with ``fetch``, ``verify`` and ``ls``) to the ``replab`` command's subparsers."""
    p = sub.add_parser("data", help="download the real datasets' official files, verify them, list them")
    actions = p.add_subparsers(dest="data_action", required=True)
    f = actions.add_parser("fetch", help="download datasets into the data root (resumable, checksummed)")
    f.add_argument("names", nargs="+", metavar="NAME", help="datasets to fetch (see `replab data ls`)")
    f.add_argument("--force", action="store_true",
                   help="download again files that are there but fail their checksum, and overwrite them")
    f.add_argument("--url", help="the address of a one-file dataset with none recorded (e.g. symsol)")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    v = actions.add_parser("verify", help="re-check the files under the data root against their checksums")
    v.add_argument("names", nargs="*", metavar="NAME", help="datasets to check (default: every one present)")
    ls = actions.add_parser("ls", help="each dataset, whether it is under the data root and the pages it serves")
    for q in (f, v, ls):
        q.add_argument("--root", help="the data folder (default: the REPLAB_DATA environment variable)")
    p.set_defaults(func=run)


def _fetch(args) -> int:
    from .fetch import FetchError, fetch

    failed = 0
    for name in args.names:
        try:
            for line in fetch(name, args.root, force=args.force, progress=not args.no_progress, url=args.url):
                print(f"{name}: {line}")
        except FetchError as err:
            print(f"replab data fetch: {err}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def _verify(args) -> int:
    from .fetch import verify

    rows = verify(args.names or None, args.root)
    if not rows:
        print("replab data verify: no dataset under the data root")
        return 0
    for r in rows:
        print(f"{r.dataset:10s} {r.status:10s} {r.path}" + (f"  ({r.detail})" if r.detail else ""))
    bad = [r for r in rows if r.status in ("mismatch", "missing", "partial")]
    counts = {s: sum(r.status == s for r in rows) for s in ("ok", "unverified", "mismatch", "missing", "partial")}
    print("replab data verify: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return 1 if bad else 0


def _ls(args) -> int:
    from .fetch import listing

    for row in listing(args.root):
        print(f"{row['name']:10s} {row['title']}\n    state: {row['state']}")
        print("    pages: " + (", ".join(row["pages"]) or "none"))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``replab data <action>``; the exit status is 1 when a fetch fails or a file fails its check."""
    from .fetch import FetchError

    try:
        return {"fetch": _fetch, "verify": _verify, "ls": _ls}[args.data_action](args)
    except FetchError as err:
        print(f"replab data {args.data_action}: {err}", file=sys.stderr)
        return 1
