"""Grids of training runs (objective × regularisation × seed × dataset) through any executor.

:func:`run_grid` submits every member that is not in the artifact cache yet to an executor with a
``concurrent.futures``-style ``submit(fn, *args)`` returning futures with ``.result()``: local processes by default
(:class:`~concurrent.futures.ProcessPoolExecutor`), a Dask cluster (``dask.distributed.Client``), or SLURM through a
``submitit`` executor; or :class:`InProcess`, which trains every member in the calling process. Workers write their results into the shared cache folder; finished members are skipped on
a re-run, and a member killed half-way resumes from its checkpoint when submitted again.
"""
from __future__ import annotations

import itertools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

from .cache import ArtifactCache, config_hash
from .runtime import progress
from .train import ARTIFACT_KIND, TrainConfig, TrainedRun, key_config, load_run, train_group
from .train.groups import default_group_size, groups

__all__ = ["GridMember", "run_grid", "expand", "load_grid", "groups", "InProcess", "train_runs"]


@dataclass
class GridMember:
    """The outcome of one member: ``status`` is "cached" (skipped), "trained" or "failed" (with ``error``)."""
    config: TrainConfig
    key: str
    status: str
    error: str | None = None


def expand(base: TrainConfig, **axes: Iterable[Any]) -> list[TrainConfig]:
    """The product grid: one copy of ``base`` per combination of the ``axes`` values.

    An axis is a TrainConfig field (``seed=range(5)``) or, prefixed with ``params__``, an objective
    hyper-parameter (``params__beta=[1, 2, 4, 6, 8]``).
    """
    names = list(axes)
    configs = []
    for values in itertools.product(*(list(axes[n]) for n in names)):
        fields, params = {}, dict(base.objective_params)
        for name, value in zip(names, values):
            if name.startswith("params__"):
                params[name[len("params__"):]] = value
            else:
                fields[name] = value
        configs.append(replace(base, objective_params=params, **fields))
    return configs


class _PinnedKeyCache(ArtifactCache):
    """The shared cache, storing each member under the key the submitting process computed: a worker that
    imported the library at another moment (or from another copy) must not file the result elsewhere."""

    def __init__(self, root: str, pinned: dict[str, str]):
        super().__init__(root)
        self._pinned = pinned

    def key(self, kind: str, config: Any) -> str:
        if kind == ARTIFACT_KIND:
            return self._pinned[config_hash(config, with_code=False)]
        return super().key(kind, config)


def _train_group(configs: list[TrainConfig], cache_root: str, keys: list[str], data, threads: int | None
                 ) -> list[str]:
    """Run in a worker: train one group into the shared cache and return its keys (not the weights)."""
    if threads:
        import torch
        torch.set_num_threads(threads)
    pinned = {config_hash(key_config(c, data), with_code=False): k for c, k in zip(configs, keys)}
    train_group(configs, _PinnedKeyCache(cache_root, pinned), data=[data] * len(configs))
    return keys


class _Deferred:
    """A job of :class:`InProcess`: it runs when its result is asked for, so the grid's progress bar follows it."""

    def __init__(self, fn, args):
        self._fn, self._args = fn, args

    def result(self):
        return self._fn(*self._args)


class InProcess:
    """An executor for :func:`run_grid` that trains the members one after the other in the calling process, each
    when :func:`run_grid` waits for it (the cheapest on a small CPU: no worker imports torch again). Two processes
    training the same member at once are kept apart by the artifact cache's per-key lock."""

    def submit(self, fn, *args):
        return _Deferred(fn, args)


def _default_executor(n_jobs: int) -> ProcessPoolExecutor:
    # "spawn" keeps workers free of the parent's torch thread pools (fork after torch init can deadlock)
    return ProcessPoolExecutor(max_workers=n_jobs, mp_context=multiprocessing.get_context("spawn"))


def run_grid(configs: Sequence[TrainConfig], executor=None, cache: ArtifactCache | None = None, *, data=None,
             max_workers: int | None = None, threads_per_member: int | None = None,
             raise_errors: bool = True, group_size: int | None | str = "auto") -> list[GridMember]:
    """Train every configuration not yet in the cache, through ``executor``, and report each member.

    Members that share an architecture and optimiser (:func:`groups`) are shipped together and trained as one
    stacked model (:func:`replab.train.train_group`); each is stored as its own artifact.

    Parameters
    ----------
    configs : sequence of TrainConfig
    executor : optional
        Anything with ``submit(fn, *args) -> future`` where ``future.result()`` waits: a
        ``concurrent.futures`` executor, a ``dask.distributed.Client``, a ``submitit`` executor. Default: a
        local process pool of ``max_workers`` (default: the number of CPU cores, at most the number of members),
        shut down at the end.
    cache : ArtifactCache, optional
        The shared cache (default: the default cache). Its folder must be visible to the workers.
    data : optional
        In-memory data for every member (see :func:`replab.train.train`); it is sent to each worker.
    threads_per_member : torch threads in each worker (default: cores / workers for the local pool).
    raise_errors : re-raise the first failure after every member has finished (default), or only report it.
    group_size : members stacked into one model at most (1: every member alone; "auto":
        :func:`replab.train.groups.default_group_size`, which stacks on CUDA only).
    """
    configs = list(configs)
    for i, c in enumerate(configs):
        if not isinstance(c, TrainConfig):
            raise ValueError(f"configs[{i}] must be a TrainConfig, got {type(c).__name__}")
    cache = ArtifactCache() if cache is None else cache
    keys = [cache.key(ARTIFACT_KIND, key_config(c, data)) for c in configs]
    members = [GridMember(c, k, "cached" if cache.exists(ARTIFACT_KIND, key_config(c, data)) else "pending")
               for c, k in zip(configs, keys)]
    todo, seen = [], set()
    for m in members:
        if m.status == "pending" and m.key not in seen:  # identical members are trained once
            seen.add(m.key)
            todo.append(m)
    if not todo:
        return members
    if isinstance(group_size, str) and group_size == "auto":
        group_size = default_group_size([m.config for m in todo])
    batches = [[todo[i] for i in g] for g in groups([m.config for m in todo], group_size)]
    own = executor is None
    if own:
        n_jobs = max(1, min(max_workers or os.cpu_count() or 1, len(batches)))
        executor = _default_executor(n_jobs)
        if threads_per_member is None:
            threads_per_member = max(1, (os.cpu_count() or 1) // n_jobs)
    root = str(Path(cache.root).resolve())
    errors = []
    try:
        futures = [(batch, executor.submit(_train_group, [m.config for m in batch], root, [m.key for m in batch],
                                           data, threads_per_member))
                   for batch in batches]
        for batch, fut in progress(futures, desc="grid", total=len(futures)):
            try:
                fut.result()
                for m in batch:
                    m.status = "trained"
            except Exception as exc:  # a failed group must not hide the others' results
                for m in batch:
                    m.status, m.error = "failed", f"{type(exc).__name__}: {exc}"
                errors.append(exc)
    finally:
        if own:
            executor.shutdown(wait=True)
    by_key = {m.key: m for m in todo}
    for m in members:
        if m.status == "pending":
            m.status, m.error = by_key[m.key].status, by_key[m.key].error
    if errors and raise_errors:
        raise errors[0]
    return members


def load_grid(configs: Sequence[TrainConfig], cache: ArtifactCache | None = None, *, data=None
              ) -> list[TrainedRun | None]:
    """The cached runs of ``configs`` (None for members not trained yet)."""
    cache = ArtifactCache() if cache is None else cache
    return [load_run(c, cache, data=data) for c in configs]


def train_runs(configs: Sequence[TrainConfig], n_jobs: int = 1, cache: ArtifactCache | None = None
               ) -> list[TrainedRun]:
    """Train (or load from the cache) every configuration through :func:`run_grid`, and return their runs.

    ``n_jobs=1`` trains the members one after the other in this process (:class:`InProcess`); ``n_jobs > 1`` uses
    a local pool of that many worker processes. Members already in the cache are loaded, not trained.
    """
    configs = list(configs)
    if not (isinstance(n_jobs, int) and not isinstance(n_jobs, bool) and n_jobs >= 1):
        raise ValueError(f"n_jobs: expected a positive integer, got {n_jobs!r}")
    cache = ArtifactCache() if cache is None else cache
    if n_jobs == 1:
        run_grid(configs, executor=InProcess(), cache=cache)
    else:
        run_grid(configs, cache=cache, max_workers=n_jobs)
    runs = load_grid(configs, cache=cache)
    missing = [i for i, r in enumerate(runs) if r is None]
    if missing:  # only if the cache folder lost them between training and loading
        raise RuntimeError(f"train_runs: members {missing} are not in the cache {cache.root} after training")
    return runs
