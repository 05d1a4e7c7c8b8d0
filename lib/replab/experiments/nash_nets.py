"""The experiments of pages 3 and 4 of Nash, Kushman & Williams (2019): Section 5.2's three affNIST nets and
Section 5.3's training dynamics, one call per section, every model trained for each of ``n_seeds`` seeds on one set
of images (see :mod:`.nash`)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..inversion import runs
from ..inversion.information import position_errors, sample_inversions
from .nash import POOLING, GlobalPooling, TrainingDynamics, _inversion_settings, _stderr, nll_array

__all__ = ["Nets", "affnist_classifiers", "PoolingResult", "global_pooling", "dynamics_classifiers", "Dynamics",
           "training_dynamics"]


# ---------------------------------------------------------------------------------------------- page 3


@dataclass(frozen=True)
class Nets:
    """The affNIST canvases and Section 5.2's three classifiers per seed: ``specs[k][net]`` and
    ``classifiers[k][net] = (model, test accuracy)``."""

    data: runs.CoarseData
    specs: tuple
    classifiers: tuple

    def accuracies(self) -> pd.Series:
        """Each net's test accuracy, the mean over the seeds."""
        return pd.Series({name: float(np.mean([c[name][1] for c in self.classifiers])) for name in POOLING},
                         name="test accuracy")


def affnist_classifiers(g: GlobalPooling, seed: int = 0) -> Nets:
    """Page 3's setup: the convolutional, global-pooling and fully connected classifiers of ``g.dataset`` (the
    real affNIST's transformed canvases, or its offline stand-in affmnist), per seed."""
    data = runs.coarse_data(g.dataset, g.n_train, g.n_test, g.factor, seed=seed)
    specs = tuple({name: runs.ClassifierSpec(g.dataset, v, g.n_train, g.factor, g.clf_steps,
                                             hidden_units=g.hidden_units, n_test=g.n_test, seed=seed + k,
                                             data_seed=seed) for name, v in POOLING.items()}
                  for k in range(g.n_seeds))
    return Nets(data, specs, tuple({name: runs.classifier(spec) for name, spec in s.items()} for s in specs))


@dataclass(frozen=True)
class PoolingResult:
    """Fig. 4's canvases and columns (first seed), the per-net table (NCE of FC3, centroid error; means over
    seeds), the chance distance, and per net the per-image arrays (seeds, canvases): test NLLs and centroid
    errors."""

    show: torch.Tensor
    panels: dict
    table: pd.DataFrame
    chance: float
    nll: dict
    errors: dict


def global_pooling(nets: Nets, g: GlobalPooling, seed: int = 0) -> PoolingResult:
    """Page 3's experiment: per seed, FC3 of each net inverted (the three models have one shape and train as one
    stacked model) and scored on the test canvases; ``g.n_draws`` samples of each of ``g.n_position`` canvases,
    and how far their ink centroid is from the input's, against that of unrelated canvases (chance); the first
    seed's samples of the first ``g.n_show`` of those canvases and their MSE reconstructions for the figure."""
    data = nets.data
    show, measure = data.test[:g.n_show], data.test[:max(g.n_show, g.n_position)]
    chance = float(position_errors(measure, measure.roll(1, 0)[:, None], scale=g.factor)[:g.n_position].mean())
    nll, errors, panels = {n: [] for n in POOLING}, {n: [] for n in POOLING}, {}
    for k, (specs, classifiers) in enumerate(zip(nets.specs, nets.classifiers)):
        settings = _inversion_settings(g, g.n_filters, seed + k)
        inverted = runs.inversions([(s, "FC3", None) for s in specs.values()], data, **settings)
        for (name, spec), (model, ce) in zip(specs.items(), inverted):
            clf = classifiers[name][0]
            drawn = sample_inversions(model, clf.extract(data.full(measure), "FC3"), n_samples=g.n_draws, seed=seed)
            nll[name].append(ce)
            errors[name].append(position_errors(measure, drawn, scale=g.factor)[:g.n_position].double().numpy())
            if k == 0:
                panels[f"{name} samples"] = drawn[:g.n_show]
                mse = runs.mse_decoder(spec, "FC3", data, steps=g.mse_steps, seed=seed)
                panels[f"{name} MSE"] = mse.reconstruct(clf.extract(data.full(show), "FC3"))
    nll = {n: nll_array(v) for n, v in nll.items()}
    errors = {n: np.stack(v) for n, v in errors.items()}
    table = pd.DataFrame([{"net": n, "NCE (nats)": -nll[n].mean(), "stderr": _stderr(-nll[n]),
                           "bits/dim": nll[n].mean() / (data.test[0].numel() * math.log(2.0)),
                           "centroid error (px)": errors[n].mean()} for n in POOLING]).set_index("net")
    return PoolingResult(show, panels, table, chance, nll, errors)


# ---------------------------------------------------------------------------------------------- page 4


def dynamics_classifiers(d: TrainingDynamics, seed: int = 0) -> tuple[runs.CoarseData, tuple]:
    """Page 4's setup: the images of the inversion models and, per seed, the specs of the regular and the
    overfitted classifier (``d.n_overfit`` examples, no dropout), both trained for ``max(d.snapshots)`` updates."""
    data = runs.coarse_data(d.dataset, d.n_train, d.n_test, d.factor, seed=seed)
    steps = max(d.snapshots)
    specs = tuple({"regular": runs.ClassifierSpec(d.dataset, "conv", d.n_train, d.factor, steps, n_test=d.n_test,
                                                  snapshots=d.snapshots, seed=seed + k, data_seed=seed),
                   "overfitted": runs.ClassifierSpec(d.dataset, "conv", d.n_overfit, d.factor, steps,
                                                     n_test=d.n_test, dropout=0.0, batch_size=min(64, d.n_overfit),
                                                     snapshots=d.snapshots, seed=seed + k, data_seed=seed)}
                  for k in range(d.n_seeds))
    return data, specs


@dataclass(frozen=True)
class Dynamics:
    """Page 4's rows (classifier, layer, updates, test accuracy and NCE, means over seeds) and the per-image test
    NLLs (seeds, test images) by ``(classifier, snapshot, layer)``."""

    table: pd.DataFrame
    nll: dict


def training_dynamics(data: runs.CoarseData, specs: tuple, d: TrainingDynamics, seed: int = 0) -> Dynamics:
    """Page 4's experiment: per seed, the inversion model of every layer of ``d.layers`` at every snapshot of
    every classifier (the models of one layer have one shape and train as one stacked model)."""
    cases = [(name, snap, layer) for name in specs[0] for snap in d.snapshots for layer in d.layers]
    nll = {case: [] for case in cases}
    for k, spec in enumerate(specs):
        settings = _inversion_settings(d, d.n_filters, seed + k)
        done = runs.inversions([(spec[name], layer, snap) for name, snap, layer in cases], data, **settings)
        for case, (_, ce) in zip(cases, done):
            nll[case].append(ce)
    nll = {case: nll_array(v) for case, v in nll.items()}
    rows = []
    for name, snap, layer in cases:
        acc = np.mean([runs.classifier(spec[name], snapshot=snap)[1] for spec in specs])
        rows.append({"classifier": name, "layer": layer, "updates": snap, "test accuracy": float(acc),
                     "NCE (nats)": -nll[name, snap, layer].mean(), "stderr": _stderr(-nll[name, snap, layer])})
    return Dynamics(pd.DataFrame(rows), nll)
