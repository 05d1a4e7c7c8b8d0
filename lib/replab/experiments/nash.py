"""The experiments of Nash, Kushman & Williams (2019): one call per section of the four pages of ``notebooks/nash2019``.

The models (classifiers, inversion models, MSE decoders) are cached runs of :mod:`replab.inversion.runs`, so pages
asking for the same sizes share them: pages 1 and 2 resolve one :class:`Models` experiment and so use one
classifier and its inversion models. Each function returns tidy frames and the inputs of the page's figures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch

from .. import profiles
from ..inversion import LAYERS, runs
from ..inversion.information import (nearest_training_images, position_error, representation_distances,
                                     sample_inversions)

__all__ = ["Models", "InvertingLayers", "RepresentationSpace", "GlobalPooling", "TrainingDynamics", "Trained",
           "trained_classifier", "LayerInversions", "layer_inversions", "samples_and_reconstructions",
           "RepresentationCheck", "representation_space", "neighbours_and_samples", "Nets", "affnist_classifiers",
           "PoolingResult", "global_pooling", "dynamics_classifiers", "training_dynamics", "nats_table"]

LAYERS_PAGE = "nash2019/01-inverting-layers"
SPACE_PAGE = "nash2019/02-representation-space"
POOLING = {"convolutional": "conv", "global pooling": "global_pool", "fully connected": "fc"}  # Section 5.2's nets


# ---------------------------------------------------------------------------------------------- the experiments


@profiles.experiment("nash2019.models", pages=(LAYERS_PAGE, SPACE_PAGE))
@dataclass(frozen=True)
class Models:
    """Sec. 5.1: the MNIST classifier and the inversion model of each of its layers (pages 1 and 2 share them)."""

    dataset: str = profiles.size("mnist10k (offline); mnist, svhn or cifar10 with real files")
    n_train: int = profiles.size("training images (classifier and inversion models; the 1NN pool)", unit="images")
    n_test: int = profiles.size("test images for the accuracy and the cross-entropies", unit="images")
    factor: int = profiles.size("images average-pooled by this factor (1: the paper's 28×28)")
    clf_steps: int = profiles.size("classifier updates", unit="steps")
    inv_steps: int = profiles.size("updates per inversion model", unit="steps")
    n_filters: int = profiles.size("PixelCNN++ width for grey images (64 in the paper)", unit="filters")
    colour_filters: int = profiles.size("PixelCNN++ width for svhn and cifar10 (196 in the paper)", unit="filters")
    n_res: int = profiles.size("residual layers per level of the PixelCNN++")
    inv_batch: int = profiles.size("batch size of the inversion models", unit="images")


@profiles.experiment("nash2019.inverting-layers", pages=(LAYERS_PAGE,))
@dataclass(frozen=True)
class InvertingLayers:
    """Fig. 1: samples and MSE reconstructions of a few test digits."""

    mse_steps: int = profiles.size("MSE decoder updates", unit="steps")
    n_show: int = profiles.size("test images shown with samples", unit="images")


@profiles.experiment("nash2019.representation-space", pages=(SPACE_PAGE,))
@dataclass(frozen=True)
class RepresentationSpace:
    """Table 1 and Fig. 2: inversion samples mapped back into representation space."""

    n_images: int = profiles.size("test images of the table (500 in the paper)", unit="images")
    n_draws: int = profiles.size("inversion samples per test image (10 in the paper)", unit="samples")


@profiles.experiment("nash2019.global-pooling", pages=("nash2019/03-global-pooling",))
@dataclass(frozen=True)
class GlobalPooling:
    """Sec. 5.2 and Fig. 4: FC3 of three affNIST classifiers (convolutional, global pooling, fully connected)."""

    n_train: int = profiles.size("training canvases (classifiers and inversion models)", unit="images")
    n_test: int = profiles.size("test canvases for the accuracies and the cross-entropies", unit="images")
    factor: int = profiles.size("canvases average-pooled by this factor (1: the paper's 40×40)")
    clf_steps: int = profiles.size("updates per classifier", unit="steps")
    hidden_units: int = profiles.size("width of the fully connected net's two layers (2,048 in the paper)",
                                      unit="units")
    inv_steps: int = profiles.size("updates per inversion model", unit="steps")
    n_filters: int = profiles.size("PixelCNN++ width", unit="filters")
    n_res: int = profiles.size("residual layers per level of the PixelCNN++")
    inv_batch: int = profiles.size("batch size of the inversion models", unit="images")
    mse_steps: int = profiles.size("MSE decoder updates", unit="steps")
    n_show: int = profiles.size("test canvases with samples (also those the position error is measured on)",
                                unit="images")
    n_draws: int = profiles.size("samples per canvas", unit="samples")


@profiles.experiment("nash2019.training-dynamics", pages=("nash2019/04-training-dynamics",))
@dataclass(frozen=True)
class TrainingDynamics:
    """Sec. 5.3 and Fig. 5b: inversion models of classifier snapshots, regular and overfitted."""

    dataset: str = profiles.size("mnist10k (offline); mnist with real files")
    n_train: int = profiles.size("training images of the regular classifier and of every inversion model",
                                 unit="images")
    n_test: int = profiles.size("test images for the accuracies and the cross-entropies", unit="images")
    factor: int = profiles.size("images average-pooled by this factor (1: the paper's 28×28)")
    snapshots: tuple[int, ...] = profiles.size("classifier updates to invert after (the last is the training "
                                               "length)", unit="steps")
    n_overfit: int = profiles.size("training examples of the overfitted classifier (100 in the paper)",
                                   unit="images")
    layers: tuple[str, ...] = profiles.size("layers inverted at every snapshot")
    inv_steps: int = profiles.size("updates per inversion model", unit="steps")
    n_filters: int = profiles.size("PixelCNN++ width", unit="filters")
    n_res: int = profiles.size("residual layers per level of the PixelCNN++")
    inv_batch: int = profiles.size("batch size of the inversion models", unit="images")


def _inversion_settings(sizes, n_filters: int, seed: int) -> dict:
    return dict(n_filters=n_filters, n_res=sizes.n_res, steps=sizes.inv_steps, batch_size=sizes.inv_batch,
                seed=seed)


# ---------------------------------------------------------------------------------------------- pages 1 and 2


@dataclass(frozen=True)
class Trained:
    """The data, the trained classifier (spec, model, test accuracy) and its inversion models' settings."""

    data: runs.CoarseData
    spec: runs.ClassifierSpec
    model: torch.nn.Module
    accuracy: float
    inversion: dict


def trained_classifier(m: Models, seed: int = 0) -> Trained:
    """Setup of pages 1 and 2: the coarse images and the trained classifier of Section 5.1."""
    data = runs.coarse_data(m.dataset, m.n_train, m.n_test, m.factor, seed=seed)
    spec = runs.ClassifierSpec(m.dataset, "conv", m.n_train, m.factor, m.clf_steps, n_test=m.n_test, seed=seed)
    model, acc = runs.classifier(spec)
    width = m.colour_filters if runs.is_colour(m.dataset) else m.n_filters
    return Trained(data, spec, model, acc, _inversion_settings(m, width, seed))


@dataclass(frozen=True)
class LayerInversions:
    """One inversion model per layer, the cross-entropies (:func:`nats_table`) and the unconditional H*(x)."""

    models: dict
    table: pd.DataFrame
    h_x: dict


def layer_inversions(t: Trained) -> LayerInversions:
    """Page 1's experiment: one inversion model per layer and one unconditional model, scored on the test images."""
    models, ces = {}, {}
    for layer in LAYERS:
        models[layer], ces[layer] = runs.inversion(t.spec, layer, t.data, **t.inversion)
    _, h_x = runs.inversion(t.spec, None, t.data, **t.inversion)
    return LayerInversions(models, nats_table(ces, h_x), h_x)


def samples_and_reconstructions(t: Trained, inv: LayerInversions, e: InvertingLayers, seed: int = 0):
    """Fig. 1: the first ``e.n_show`` test images and, per layer, two inversion samples then (after every layer's
    samples) the MSE reconstructions: ``(images, {column: images})``."""
    show = t.data.test[:e.n_show]
    samples, recons = {}, {}
    for layer in LAYERS:
        ctx = t.model.extract(t.data.full(show), layer)
        samples[f"{layer} samples"] = sample_inversions(inv.models[layer], ctx, n_samples=2, seed=seed)
        dec = runs.mse_decoder(t.spec, layer, t.data, steps=e.mse_steps, seed=seed)
        recons[layer + " MSE"] = dec.reconstruct(ctx)
    return show, {**samples, **recons}


@dataclass(frozen=True)
class RepresentationCheck:
    """Table 1 (one row per layer), the test images it is measured on and their inversion samples per layer."""

    table: pd.DataFrame
    images: torch.Tensor
    samples: dict


def representation_space(t: Trained, r: RepresentationSpace, seed: int = 0) -> RepresentationCheck:
    """Page 2's experiment: ``r.n_draws`` inversion samples of each of ``r.n_images`` test images per layer, and
    the L1 distances of Table 1 (1NN, IM-S, IM-NN)."""
    images = t.data.test[:r.n_images]
    rows, samples = [], {}
    for layer in LAYERS:
        model, _ = runs.inversion(t.spec, layer, t.data, **t.inversion)
        samples[layer] = sample_inversions(model, t.model.extract(t.data.full(images), layer), n_samples=r.n_draws,
                                           seed=seed)
        d = representation_distances(t.model, layer, t.data.full(images), t.data.full(samples[layer]),
                                     t.data.full(t.data.train), seed=seed)
        rows.append({"layer": layer, **d})
    return RepresentationCheck(pd.DataFrame(rows).set_index("layer"), images, samples)


def neighbours_and_samples(t: Trained, check: RepresentationCheck) -> dict:
    """Fig. 2's columns: per layer, the nearest training image in that layer's space, then the inversion samples."""
    out = {}
    for layer in LAYERS:
        idx = nearest_training_images(t.model, layer, t.data.full(check.images), t.data.full(t.data.train))
        out[f"{layer} 1NN"] = t.data.train[idx]
        out[f"{layer} samples"] = check.samples[layer]
    return out


# ---------------------------------------------------------------------------------------------- page 3


@dataclass(frozen=True)
class Nets:
    """The affNIST canvases and Section 5.2's three classifiers: specs and ``(model, test accuracy)`` by net."""

    data: runs.CoarseData
    specs: dict
    classifiers: dict

    def accuracies(self) -> pd.Series:
        return pd.Series({name: acc for name, (_, acc) in self.classifiers.items()}, name="test accuracy")


def affnist_classifiers(g: GlobalPooling, seed: int = 0) -> Nets:
    """Page 3's setup: the convolutional, global-pooling and fully connected classifiers of affNIST."""
    data = runs.coarse_data("affmnist", g.n_train, g.n_test, g.factor, seed=seed)
    specs = {name: runs.ClassifierSpec("affmnist", v, g.n_train, g.factor, g.clf_steps, hidden_units=g.hidden_units,
                                       n_test=g.n_test, seed=seed) for name, v in POOLING.items()}
    return Nets(data, specs, {name: runs.classifier(spec) for name, spec in specs.items()})


@dataclass(frozen=True)
class PoolingResult:
    """Fig. 4's canvases and columns, the per-net table (NCE of FC3, centroid error) and the chance distance."""

    show: torch.Tensor
    panels: dict
    table: pd.DataFrame
    chance: float


def global_pooling(nets: Nets, g: GlobalPooling, seed: int = 0) -> PoolingResult:
    """Page 3's experiment: FC3 of each net inverted (the three models have one shape and train as one stacked
    model), samples and MSE reconstructions of ``g.n_show`` canvases, and how far the samples' ink centroid is
    from the input's, against that of unrelated canvases (chance)."""
    data = nets.data
    show = data.test[:g.n_show]
    rows, panels = [], {}
    others = data.test[g.n_show:2 * g.n_show, None] if 2 * g.n_show <= len(data.test) else show.roll(1, 0)[:, None]
    chance = position_error(show, others, scale=g.factor)
    settings = _inversion_settings(g, g.n_filters, seed)
    inverted = dict(zip(nets.specs, runs.inversions([(s, "FC3", None) for s in nets.specs.values()], data,
                                                    **settings)))
    for name, spec in nets.specs.items():
        clf = nets.classifiers[name][0]
        model, ce = inverted[name]
        ctx = clf.extract(data.full(show), "FC3")
        panels[f"{name} samples"] = sample_inversions(model, ctx, n_samples=g.n_draws, seed=seed)
        panels[f"{name} MSE"] = runs.mse_decoder(spec, "FC3", data, steps=g.mse_steps, seed=seed).reconstruct(ctx)
        rows.append({"net": name, "NCE (nats)": ce["nce_nats"], "stderr": ce["stderr_nats"],
                     "bits/dim": ce["bits_per_dim"],
                     "centroid error (px)": position_error(show, panels[f"{name} samples"], scale=g.factor)})
    return PoolingResult(show, panels, pd.DataFrame(rows).set_index("net"), chance)


# ---------------------------------------------------------------------------------------------- page 4


def dynamics_classifiers(d: TrainingDynamics, seed: int = 0) -> tuple[runs.CoarseData, dict]:
    """Page 4's setup: the images of the inversion models and the specs of the regular and the overfitted
    classifier (``d.n_overfit`` examples, no dropout), both trained for ``max(d.snapshots)`` updates."""
    data = runs.coarse_data(d.dataset, d.n_train, d.n_test, d.factor, seed=seed)
    steps = max(d.snapshots)
    specs = {"regular": runs.ClassifierSpec(d.dataset, "conv", d.n_train, d.factor, steps, n_test=d.n_test,
                                            snapshots=d.snapshots, seed=seed),
             "overfitted": runs.ClassifierSpec(d.dataset, "conv", d.n_overfit, d.factor, steps, n_test=d.n_test,
                                               dropout=0.0, batch_size=min(64, d.n_overfit),
                                               snapshots=d.snapshots, seed=seed)}
    return data, specs


def training_dynamics(data: runs.CoarseData, specs: dict, d: TrainingDynamics, seed: int = 0) -> pd.DataFrame:
    """Page 4's experiment: the inversion model of every layer of ``d.layers`` at every snapshot of every
    classifier (the models of one layer have one shape and train as one stacked model): one row per classifier,
    snapshot and layer with the classifier's test accuracy and the NCE."""
    cases = [(name, snap, layer) for name in specs for snap in d.snapshots for layer in d.layers]
    inverted = dict(zip(cases, runs.inversions([(specs[name], layer, snap) for name, snap, layer in cases], data,
                                               **_inversion_settings(d, d.n_filters, seed))))
    rows = []
    for name, spec in specs.items():
        for snap in d.snapshots:
            _, acc = runs.classifier(spec, snapshot=snap)
            for layer in d.layers:
                _, ce = inverted[name, snap, layer]
                rows.append({"classifier": name, "layer": layer, "updates": snap, "test accuracy": acc,
                             "NCE (nats)": ce["nce_nats"], "stderr": ce["stderr_nats"]})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- tables


def nats_table(ces: dict, h_x: dict | None = None) -> pd.DataFrame:
    """A DataFrame of cross-entropies per layer: nats/image, ± stderr, bits/dim, NCE and (with ``h_x``, the
    unconditional model's) the information bound H*(x) − H*(x|h)."""
    rows = []
    for layer, ce in ces.items():
        row = {"layer": layer, "nats/image": ce["nats_per_image"], "stderr": ce["stderr_nats"],
               "bits/dim": ce["bits_per_dim"], "NCE (nats)": ce["nce_nats"]}
        if h_x is not None:
            row["I bound (nats)"] = h_x["nats_per_image"] - ce["nats_per_image"]
            row["I bound (bits/dim)"] = row["I bound (nats)"] / (ce["n_dims"] * math.log(2.0))
        rows.append(row)
    return pd.DataFrame(rows).set_index("layer")
