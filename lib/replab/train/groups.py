"""Many runs in one process: split them into groups that stack (same :func:`~replab.train.group_signature`)
and train each group as one model."""
from __future__ import annotations

from typing import Sequence

from ..cache import ArtifactCache
from ..runtime import get_device
from . import TrainConfig, TrainedRun, group_signature, train_group

__all__ = ["GROUP_SIZE", "groups", "train_many", "default_group_size"]

# members stacked into one model at most on a GPU (a bound on memory; 32 keeps a GPU busy with the book's models)
GROUP_SIZE = 32


def default_group_size(configs: Sequence[TrainConfig]) -> int:
    """How many members to stack by default: :data:`GROUP_SIZE` on CUDA, 1 on a CPU.

    A stacked group does the same arithmetic as its members one after another and saves the per-operation
    overhead, which dominates small models on a GPU. On a CPU the book's models are compute-bound and the
    batched kernels are slower than the plain ones (``benchmarks/training.py --stacked`` measures 0.9x for the
    MLP VAE and 0.64x for the conv VAE at K = 8 on one core), so members train one after another there.
    """
    devices = {get_device(c.device).type for c in configs}
    return GROUP_SIZE if devices == {"cuda"} else 1


def groups(configs: Sequence[TrainConfig], size: int | None = GROUP_SIZE) -> list[list[int]]:
    """Indices of ``configs`` split into groups that train together as one stacked model: members with the same
    :func:`group_signature`, in order of first appearance, at most ``size`` per group (None: no limit)."""
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise ValueError(f"size must be a positive integer or None, got {size!r}")
    by_signature: dict = {}
    for i, config in enumerate(configs):
        by_signature.setdefault(group_signature(config), []).append(i)
    out = []
    for members in by_signature.values():
        step = size or len(members)
        out.extend(members[j:j + step] for j in range(0, len(members), step))
    return out


def train_many(configs: Sequence[TrainConfig], cache: ArtifactCache | None | bool = None, *, data=None,
               group_size: int | None | str = "auto", datas: Sequence | None = None,
               init: Sequence | None = None) -> list[TrainedRun]:
    """Train (or load) every run of ``configs`` in this process, members of one :func:`groups` group together
    as one stacked model (``group_size`` at most; "auto": :func:`default_group_size`); ``data``: in-memory data
    shared by every run, or ``datas``: one per run; ``init``: one starting point per run (see
    :func:`~replab.train.train`). Returns the runs in order. (Across processes or machines:
    :func:`replab.grid.run_grid`.)
    """
    configs = list(configs)
    if data is not None and datas is not None:
        raise ValueError("data and datas: give one of them")
    for name, values in (("datas", datas), ("init", init)):
        if values is not None and len(values) != len(configs):
            raise ValueError(f"{name}: one entry per config expected, got {len(values)} for {len(configs)} configs")
    datas = list(datas) if datas is not None else [data] * len(configs)
    runs: list[TrainedRun | None] = [None] * len(configs)
    if isinstance(group_size, str) and group_size == "auto":
        group_size = default_group_size(configs) if configs else 1
    for group in groups(configs, group_size):
        trained = train_group([configs[i] for i in group], cache, data=[datas[i] for i in group],
                              init=None if init is None else [init[i] for i in group])
        for i, run in zip(group, trained):
            runs[i] = run
    return runs
