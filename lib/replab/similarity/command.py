"""The ``replab similarity`` command: :func:`similarity_grid` over saved activations, for runs that take hours.

    replab similarity NAME=PATH [NAME=PATH ...] [--metrics linear_cka,procrustes] [--pairs A:B ...] [--no-self]
                      [--memory-mb 4096] [--device auto] [--checkpoint DIR] -o scores.csv

Each PATH holds one model's activations over the same examples: a ``.pt`` file of ``{layer name: tensor}`` (as
written by ``torch.save``; loaded with ``weights_only=True``) or an array folder of the artifact cache (a streamed
capture, read memory-mapped). Finished tiles are kept in ``--checkpoint`` (default: a folder of the artifact cache
named after the inputs and settings), so the same command, run again after an interruption, resumes.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .allpairs import GRID_METRICS

__all__ = ["add_subcommand", "run"]


def add_subcommand(sub) -> None:
    """Add ``similarity`` to the ``replab`` command's subparsers."""
    p = sub.add_parser("similarity", help="all models against all models: CKA and Procrustes grids, resumable")
    p.add_argument("inputs", nargs="+", metavar="NAME=PATH",
                   help="a model's activations: a .pt file {layer: tensor} or an array folder (NAME defaults to "
                        "the file name)")
    p.add_argument("--metrics", default=",".join(GRID_METRICS), help=f"comma-separated subset of {GRID_METRICS}")
    p.add_argument("--pairs", nargs="*", metavar="A:B", help="model pairs to compare (default: every pair)")
    p.add_argument("--no-self", action="store_true", help="do not compare a model with itself")
    p.add_argument("--memory-mb", type=float, default=4096, help="memory for the reductions of two blocks")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--precision", default="mixed", choices=["mixed", "float64"])
    p.add_argument("--sigma", type=float, default=0.8, help="RBF bandwidth (a multiple of the median distance)")
    p.add_argument("--checkpoint", help="folder of finished tiles (default: in the artifact cache)")
    p.add_argument("-o", "--output", required=True, help="where to write the table (CSV)")
    p.set_defaults(func=run)


def _load(path: Path) -> dict:
    from ..cache import map_array_folder, safe_torch_load

    if path.is_dir():
        layers = map_array_folder(path)
        if layers is None:
            raise ValueError(f"{path}: not an intact array folder (no index, or a file of the wrong size)")
        return layers
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file or folder")
    try:
        obj = safe_torch_load(path)
    except Exception as exc:
        raise ValueError(f"{path}: cannot be read as activations ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"{path}: expected a dict layer name -> tensor, got {type(obj).__name__}")
    return obj


def run(args: argparse.Namespace) -> int:
    """Compute the grid of ``args`` and write it; the number of scores goes to stdout."""
    from ..cache import ArtifactCache, atomic_write_bytes, config_hash
    from .allpairs import similarity_grid

    models, sources = {}, []
    for spec in args.inputs:
        name, sep, path = spec.partition("=")
        path = Path(path if sep else name)
        name = name if sep else path.stem
        if name in models:
            raise ValueError(f"inputs: model name {name!r} given twice")
        models[name] = _load(path)
        stat = path.stat()
        sources.append([name, str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    pairs = None
    if args.pairs:
        pairs = [tuple(p.split(":", 1)) for p in args.pairs]
        bad = [p for p, q in zip(args.pairs, pairs) if len(q) != 2]
        if bad:
            raise ValueError(f"pairs: expected A:B, got {bad}")
    settings = dict(metrics=metrics, pairs=pairs, include_self=not args.no_self, sigma=args.sigma,
                    memory_mb=args.memory_mb, precision=args.precision)
    checkpoint = Path(args.checkpoint) if args.checkpoint else ArtifactCache().kind_dir("similarity-grid") / (
        config_hash({"inputs": sources, **settings}, with_code=False))
    print(f"replab similarity: {len(models)} models, checkpoint {checkpoint}", flush=True)
    frame = similarity_grid(models, device=args.device, checkpoint=checkpoint, **settings)
    out = Path(args.output)
    atomic_write_bytes(out, frame.to_csv(index=False).encode())
    print(f"replab similarity: {len(frame)} scores ({frame.attrs['tiles_computed']} tiles computed, "
          f"{frame.attrs['tiles_loaded']} resumed) -> {out}")
    return 0
