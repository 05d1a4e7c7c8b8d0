"""Sec. 2.2 and Fig. 3 of Peşte, Malagò & Sârbu (2017), ``notebooks/peste2017/03-linear-separability``: logistic
regression probes on the latent representation of the shared models of :mod:`.peste2017` at their training
snapshots, and on the pixels, keeping each test digit's outcome at the last snapshot so that the claims' intervals
(:mod:`.peste2017_claims`) can resample runs and test digits together.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from .. import data as _data
from ..probes import FEATURE_KINDS, LinearProbe, probe_features
from .peste2017 import LinearSeparability, Models, _digits, encode, train_models

__all__ = ["probe_snapshots", "pixel_baseline", "Probes", "probe_accuracies", "legacy_probes"]


def _fit(train, y_train, test, y_test, **probe_kwargs) -> dict:
    probe = LinearProbe(**probe_kwargs).fit(train, y_train)
    correct = probe.predict(test) == np.asarray(y_test)
    return {"accuracy": float(correct.mean()), "train_accuracy": probe.score(train, y_train),
            "converged": probe.converged_, "n_iter": probe.n_iter_, "correct": correct}


def probe_snapshots(run, x_train, y_train, x_test, y_test, *, kinds: Sequence[str] = FEATURE_KINDS,
                    last_only: bool = False, seed: int = 0, **probe_kwargs) -> list[dict]:
    """Linear-probe accuracy of each feature kind (means, means and variances, samples) at every snapshot of a
    trained run (Fig. 3), or at its last one (``last_only``).

    Records carry ``epoch``, ``step``, ``k``, ``kind``, ``accuracy``, ``train_accuracy``, ``converged``, ``n_iter``
    and ``correct`` (whether each test digit was classified right, a boolean array). The samples are drawn with
    ``seed`` for the training digits and ``seed + 1`` for the test digits, as :func:`replab.probes.evaluate_snapshots`
    draws them.
    """
    cfg, k = run.config, run.config.model.latent_dim
    per_epoch = (cfg.n or len(_data.load(cfg.dataset, split=cfg.split))) // cfg.batch_size
    steps = sorted(run.snapshots)[-1:] if last_only else sorted(run.snapshots)
    records = []
    for step in steps:
        model = run.model_at(step)
        (mu_tr, s_tr), (mu_te, s_te) = encode(model, x_train), encode(model, x_test)
        for kind in kinds:
            train = probe_features(mu_tr, s_tr, kind, seed=seed)
            test = probe_features(mu_te, s_te, kind, seed=seed + 1)
            records.append({"epoch": step / per_epoch, "step": step, "k": k, "kind": kind,
                            **_fit(train, y_train, test, y_test, **probe_kwargs)})
    return records


def pixel_baseline(dataset: str, n_train: int | None, n_test: int | None, max_iter: int = 5000) -> dict:
    """The same logistic-regression probe on raw pixels, cached in the artifact cache (Sec. 2.2's baseline):
    ``accuracy``, ``converged`` and ``correct`` (a boolean tensor, one entry per test digit)."""
    from ..cache import ArtifactCache

    def compute():
        x_tr, y_tr, x_te, y_te = _digits(dataset, n_train)
        x_te, y_te = x_te[:n_test], y_te[:n_test]
        out = _fit(x_tr.reshape(len(x_tr), -1), y_tr, x_te.reshape(len(x_te), -1), y_te, max_iter=max_iter)
        return {"accuracy": out["accuracy"], "converged": out["converged"], "correct": torch.from_numpy(out["correct"])}

    config = {"probe": "pixels", "dataset": dataset, "n_train": n_train, "n_test": n_test, "max_iter": max_iter,
              "per_example": True}
    return ArtifactCache().get_or_compute("peste2017-probe", config, compute)


def _probe_all(models: Models, sizes: LinearSeparability, alphas: Sequence[float], seed: int,
               **probe_kwargs) -> pd.DataFrame:
    runs = train_models(models, alphas=alphas, seed=seed)
    x_train, y_train, x_test, y_test = _digits(models.dataset, sizes.n_probe_train)
    x_test, y_test = x_test[:sizes.n_test], y_test[:sizes.n_test]
    return pd.DataFrame([{"alpha": alpha, "run": run_id, **r} for (alpha, _, run_id), run in runs.items()
                         for r in probe_snapshots(run, x_train, y_train, x_test, y_test, seed=seed, **probe_kwargs)])


def _outcomes(frame: pd.DataFrame) -> dict:
    """``{(α, k, kind): bool array (runs, test digits)}`` at the last snapshot of each run."""
    last = frame[frame["step"] == frame.groupby(["alpha", "k", "run"])["step"].transform("max")]
    return {key: np.stack(list(group.sort_values("run")["correct"]))
            for key, group in last.groupby(["alpha", "k", "kind"])}


@dataclass(frozen=True)
class Probes:
    probes: pd.DataFrame  # one row per (k, run, snapshot, feature kind) at α = probe α: epoch, accuracy, converged...
    pixels: dict          # the probe on raw pixels: accuracy, converged, correct
    alpha: float          # the α of the models of ``probes``
    correct: dict         # (α, k, kind) -> bool array (runs, test digits) at the last snapshot; every α for means


def probe_accuracies(models: Models, sizes: LinearSeparability, *, alpha: float = 1.0, seed: int = 0) -> Probes:
    """The converged logistic-regression probes at every snapshot of the models at ``alpha``, on pixels, and on
    the means of the models at every other α of ``models`` at their last snapshot (Sec. 2.2 on α)."""
    train_models(models, seed=seed)  # every α at once, so that on a GPU each latent size trains as one stack
    frame = _probe_all(models, sizes, [alpha], seed, max_iter=sizes.max_iter)
    others = [a for a in models.alphas if a != alpha]
    swept = _probe_all(models, sizes, others, seed, kinds=("means",), last_only=True, max_iter=sizes.max_iter)
    pixels = pixel_baseline(models.dataset, sizes.n_probe_train, sizes.n_test, max_iter=sizes.max_iter)
    correct = _outcomes(pd.concat([frame, swept])) if len(swept) else _outcomes(frame)
    return Probes(frame.drop(columns="correct"), pixels, float(alpha), correct)


def legacy_probes(models: Models, sizes: LinearSeparability, converged: pd.DataFrame, *, alpha: float = 1.0,
                  learning_rate: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Accuracy per (k, epoch) and feature kind of the public code's probe (``legacy_steps`` SGD steps at
    ``learning_rate``) beside the ``converged`` probes of :func:`probe_accuracies`."""
    legacy = _probe_all(models, sizes, [alpha], seed, legacy_fixed_steps=sizes.legacy_steps,
                        legacy_learning_rate=learning_rate)
    table = {"converged": converged, f"{sizes.legacy_steps} SGD steps": legacy}
    return pd.concat({name: frame.pivot_table(index=["k", "epoch"], columns="kind", values="accuracy")
                      for name, frame in table.items()}, axis=1)
