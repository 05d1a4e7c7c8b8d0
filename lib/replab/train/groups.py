"""Many runs in one process: split them into groups that stack (same :func:`~replab.train.group_signature`)
and train each group as one model."""
from __future__ import annotations

from typing import Sequence

from ..cache import ArtifactCache
from . import TrainConfig, TrainedRun, group_signature, train_group

__all__ = ["GROUP_SIZE", "groups", "train_many"]

# members stacked into one model at most (a bound on memory; 32 keeps a GPU busy with the book's models)
GROUP_SIZE = 32


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
               group_size: int | None = GROUP_SIZE) -> list[TrainedRun]:
    """Train (or load) every run of ``configs`` in this process, members of one :func:`groups` group together
    as one stacked model; ``data``: in-memory data shared by every run. Returns the runs in order. (Across
    processes or machines: :func:`replab.grid.run_grid`.)"""
    configs = list(configs)
    runs: list[TrainedRun | None] = [None] * len(configs)
    for group in groups(configs, group_size):
        for i, run in zip(group, train_group([configs[i] for i in group], cache, data=[data] * len(group))):
            runs[i] = run
    return runs
