"""One training engine for every model of the zoo: VAEs under any objective of :mod:`replab.objectives`, and
classifiers under cross-entropy, or binary cross-entropy over a dataset's binary attributes (multi-label, CelebA's
40), with random labels, augmentation and dropout as Jamroż et al. and Nash et al. need.

A run is described by a :class:`TrainConfig` (:mod:`.config`); :func:`train` trains it once and stores the result
in the artifact cache under the configuration's key, so every page that asks for the same configuration reuses
it. :func:`train_group` trains many runs that share an architecture together, as one stacked model
(:mod:`.loop`), and stores each as its own artifact: a page cannot tell a stacked member from a solo run.

Snapshots of the weights are kept at chosen steps. Checkpoints (:mod:`.checkpoint`) are written atomically
every ``checkpoint_every`` steps, and a run that was killed resumes from its last good checkpoint and ends with
exactly the weights of an uninterrupted run: the data order and the noise of step t (sampling, dropout,
augmentation) are pure functions of (seed, t) (:mod:`.data`, :mod:`replab.noise`).
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import torch
from torch import nn

from .. import models as _models
from ..cache import ArtifactCache, atomic_write_bytes, code_closure, code_fingerprint, config_hash, register_code
from ..runtime import get_device
from . import checkpoint as _checkpoint
from .config import CLASSIFIER_OBJECTIVE, CLASSIFIER_OBJECTIVES, MULTI_LABEL, TrainConfig
from .data import classifier_targets, data_fingerprint, load_data
from .loop import fit, group_signature

__all__ = ["TrainConfig", "TrainedRun", "train", "train_group", "load_run", "run_key", "key_config",
           "load_data", "classifier_targets", "group_signature", "CLASSIFIER_OBJECTIVE", "CLASSIFIER_OBJECTIVES",
           "MULTI_LABEL", "ARTIFACT_KIND"]

ARTIFACT_KIND = "train"
# A trained model is defined by the engine, the models, the objectives, the noise and the data loaders: the key
# hashes their code (and what they import), and nothing else of the library.
CODE = ("replab.data", "replab.train")
register_code(ARTIFACT_KIND, *CODE)


@dataclass
class TrainedRun:
    """A trained model (in eval mode), its weights at the snapshot steps, and the per-step metrics."""
    config: TrainConfig
    model: nn.Module
    snapshots: dict[int, dict[str, torch.Tensor]]
    metrics: pd.DataFrame
    key: str | None = None
    metrics_path: Path | None = None
    best_step: int | None = None
    best_eval: float | None = None

    def model_at(self, step: int) -> nn.Module:
        """A fresh model holding the weights snapshotted after ``step`` updates (in eval mode)."""
        if step not in self.snapshots:
            raise ValueError(f"step: no snapshot at {step!r}; snapshots: {sorted(self.snapshots)}")
        model = _models.build(self.config.model)
        model.load_state_dict(self.snapshots[step])
        device = next(self.model.parameters()).device
        return model.to(device).eval()


@lru_cache(maxsize=None)
def _engine_files() -> frozenset:
    return frozenset(code_closure(*CODE))


def model_code(config: TrainConfig) -> str | None:
    """The fingerprint of the code of ``config``'s model when it lies outside the engine's own code (a model
    registered with :func:`replab.models.register`, such as the inversion models): its configuration's and its
    class's modules and what they import; None for the zoo's models, whose code every key already hashes."""
    modules = sorted({type(config.model).__module__, _models.MODELS[type(config.model)].__module__})
    modules = [m for m in modules if m.split(".")[0] == "replab"]
    if not modules or set(code_closure(*modules)) <= _engine_files():
        return None
    return code_fingerprint(*modules)


def key_config(config: TrainConfig, data=None, val_data=None) -> Any:
    """What the cache key of ``config`` hashes: the configuration, the fingerprints of in-memory training and
    validation data, and the code of a model defined outside the engine (:func:`model_code`)."""
    extra = {"data": data_fingerprint(data, config.multi_label),
             "val_data": data_fingerprint(val_data, config.multi_label), "model_code": model_code(config)}
    extra = {k: v for k, v in extra.items() if v is not None}
    return {"train": config, **extra} if extra else config


def run_key(config: TrainConfig, data=None, val_data=None) -> str:
    """The cache key of ``config`` (trained on ``data`` and evaluated on ``val_data`` when given in memory)."""
    return config_hash(key_config(config, data, val_data), code=CODE)


def _metrics_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame.from_records(rows) if rows else pd.DataFrame({"step": []})


def _as_run(config: TrainConfig, payload: dict, key: str | None, metrics_path: Path | None) -> TrainedRun:
    model = _models.build(config.model)
    model.load_state_dict(payload["state_dict"])
    model = model.to(get_device(config.device)).eval()
    snapshots = {int(k): v for k, v in payload["snapshots"].items()}
    return TrainedRun(config, model, snapshots, _metrics_frame(payload["metrics"]), key, metrics_path,
                      payload.get("best_step"), payload.get("best_eval"))


def _resolve_cache(cache) -> ArtifactCache | None:
    if cache is False:
        return None
    return ArtifactCache() if cache is None else cache


def load_run(config: TrainConfig, cache: ArtifactCache | None = None, *, data=None,
             val_data=None) -> TrainedRun | None:
    """The cached run of ``config``, or None when it has not been trained (nothing is trained here)."""
    cache = _resolve_cache(cache)
    if cache is None:
        return None
    kc = key_config(config, data, val_data)
    payload = cache.load(ARTIFACT_KIND, kc)
    if payload is None:
        return None
    path = cache.path(ARTIFACT_KIND, kc)
    metrics_path = path.with_suffix(".metrics.csv")
    if not metrics_path.is_file():  # e.g. the process died between the artifact and its log
        atomic_write_bytes(metrics_path, _metrics_frame(payload["metrics"]).to_csv(index=False).encode())
    return _as_run(config, payload, path.stem, metrics_path)


def train(config: TrainConfig, cache: ArtifactCache | None | bool = None, *, data=None,
          callbacks: Sequence[Callable[[int, dict], None]] = (), checkpoint_dir: str | Path | None = None,
          init: dict | TrainedRun | None = None, val_data=None) -> TrainedRun:
    """Train ``config`` once, or load it from the artifact cache.

    Parameters
    ----------
    config : TrainConfig
    cache : ArtifactCache, optional
        Where the result and the checkpoints live; default :class:`~replab.cache.ArtifactCache` (its default
        root); ``False`` trains in memory without storing anything (and without checkpoints unless
        ``checkpoint_dir`` is given).
    data : optional
        In-memory data instead of ``replab.data.load``: an image tensor (uint8 in 0–255, or float in [0, 1]) of
        shape (N, C, H, W), an ``(images, labels)`` pair, or a dataset with ``.images`` and ``.labels``. Its
        content enters the cache key.
    callbacks : callables ``f(step, logs)`` run after each update (``logs``: the objective's tensors).
    checkpoint_dir : where the resumable checkpoints go (default: beside the cache).
    init : for a run with ``init_from``, the weights it starts from (a state dict or the source
        :class:`TrainedRun`); default: the source run stored in the cache under that key.
    val_data : held-out data (in the forms of ``data``; for a conditional objective ``(images, targets)``) the
        run is evaluated on every ``config.eval_every`` updates; its best-evaluated weights become the model.
        Its content enters the cache key.

    Returns
    -------
    TrainedRun
        The model in eval mode, the snapshots ``{step: state_dict}`` and the metrics per logged step (also
        written as CSV next to the cached artifact, ``run.metrics_path``), with the evaluations in an ``eval``
        column at the evaluated steps and the kept step and value in ``run.best_step``, ``run.best_eval``.
    """
    return train_group([config], cache, data=[data], callbacks=callbacks, checkpoint_dir=checkpoint_dir,
                       init=[init], val_data=[val_data])[0]


def train_group(configs: Sequence[TrainConfig], cache: ArtifactCache | None | bool = None, *,
                data: Sequence | None = None, callbacks: Sequence[Callable[[int, dict], None]] = (),
                checkpoint_dir: str | Path | None = None, init: Sequence | None = None,
                val_data: Sequence | None = None) -> list[TrainedRun]:
    """Train the runs ``configs`` together as one stacked model (those not in the cache yet), store each as its
    own artifact, and return their :class:`TrainedRun` in order.

    The runs must share everything but their seeds, data selection, snapshot steps, labels and the stackable
    objective hyper-parameters; VAEs whose objectives read one posterior sample (β-VAE, β-TC-VAE, annealed VAE,
    DIP-VAE-II) may also differ in the objective and all its hyper-parameters (:func:`group_signature`; form
    groups with :func:`replab.grid.groups`). Each
    member ends with the weights and metrics of its solo :func:`train` run, up to floating-point rounding.
    ``data``: one in-memory dataset per run (or None); ``init``: one starting point per run; ``val_data``: one
    validation set per run (see :func:`train`).
    ``callbacks`` receive ``(step, logs)`` with (K,) tensors.
    """
    configs = list(configs)
    if not configs:
        raise ValueError("configs: no run to train")
    bad = [type(c).__name__ for c in configs if not isinstance(c, TrainConfig)]
    if bad:
        raise ValueError(f"configs must be TrainConfig, got {bad}")
    datas = list(data) if data is not None else [None] * len(configs)
    if len(datas) != len(configs):
        raise ValueError(f"data: one entry per config expected, got {len(datas)} for {len(configs)} configs")
    if init is not None and len(init) != len(configs):
        raise ValueError(f"init: one entry per config expected, got {len(init)} for {len(configs)} configs")
    vals = list(val_data) if val_data is not None else [None] * len(configs)
    if len(vals) != len(configs):
        raise ValueError(f"val_data: one entry per config expected, got {len(vals)} for {len(configs)} configs")
    cache = _resolve_cache(cache)
    kcs = [key_config(c, d, v) for c, d, v in zip(configs, datas, vals)]
    keys = [cache.key(ARTIFACT_KIND, kc) if cache is not None else config_hash(kc, code=CODE) for kc in kcs]
    if len(set(keys)) != len(keys):
        raise ValueError("configs: the same run appears twice in the group")
    runs: list[TrainedRun | None] = [None] * len(configs)
    # Under the members' locks (taken in key order, so two groups never wait on each other in a cycle): two
    # processes asking for the same model train it once; the second waits, then loads it.
    with ExitStack() as locks:
        if cache is not None:
            for i in sorted(range(len(keys)), key=keys.__getitem__):
                locks.enter_context(cache.lock(ARTIFACT_KIND, kcs[i]))
            for i, (c, d, v) in enumerate(zip(configs, datas, vals)):
                runs[i] = load_run(c, cache, data=d, val_data=v)
        todo = [i for i, run in enumerate(runs) if run is None]
        if todo:
            todo_keys = [keys[i] for i in todo]
            folder = _checkpoint_folder(cache, checkpoint_dir, todo_keys)
            inits = [_initial_weights(configs[i], (init or [None] * len(configs))[i], cache) for i in todo]
            payloads = fit([configs[i] for i in todo], [datas[i] for i in todo], todo_keys, folder, callbacks,
                           inits, [vals[i] for i in todo])
            for i, payload in zip(todo, payloads):
                metrics_path = None
                if cache is not None:
                    path = cache.save(ARTIFACT_KIND, kcs[i], payload)
                    metrics_path = path.with_suffix(".metrics.csv")
                    atomic_write_bytes(metrics_path, _metrics_frame(payload["metrics"]).to_csv(index=False).encode())
                runs[i] = _as_run(configs[i], payload, keys[i], metrics_path)
            _checkpoint.remove(folder)
    return runs


def _initial_weights(config: TrainConfig, given, cache: ArtifactCache | None) -> dict | None:
    """The state dict a run with ``init_from`` starts from: ``given`` (a state dict or run), else the cache's."""
    if config.init_from is None:
        if given is not None:
            raise ValueError("init: starting weights were given for a run without init_from")
        return None
    if isinstance(given, TrainedRun):
        if given.key is not None and given.key != config.init_from:
            raise ValueError(f"init: the run given has key {given.key}, but init_from={config.init_from}")
        return {k: v.detach().cpu() for k, v in given.model.state_dict().items()}
    if given is not None:
        return given
    payload = cache.load_key(ARTIFACT_KIND, config.init_from) if cache is not None else None
    return None if payload is None else payload["state_dict"]


def _checkpoint_folder(cache, checkpoint_dir, keys: list[str]) -> Path | None:
    name = keys[0] if len(keys) == 1 else "group-" + config_hash(sorted(keys), with_code=False)
    if checkpoint_dir is not None:
        return Path(checkpoint_dir) / name
    return cache.root / "_checkpoints" / name if cache is not None else None

