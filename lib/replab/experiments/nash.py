"""The experiments of Nash, Kushman & Williams (2019): one call per section of the four pages of ``notebooks/nash2019``.

The models (classifiers, inversion models, MSE decoders) are cached runs of :mod:`replab.inversion.runs`, so pages
asking for the same sizes share them: pages 1 and 2 resolve one :class:`Models` experiment and so use one
classifier and its inversion models. Every model is trained for each of ``n_seeds`` seeds (the page's seed, then
the next ones) on one set of images, so each per-image measure is an array (seeds, test images) and the claims'
effects (:mod:`.nash_effects`) are paired bootstraps over both. Each function returns tidy frames and the inputs of
the page's figures (those of the first seed). Pages 3 and 4's experiments are in :mod:`.nash_nets`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from .. import data as _data
from .. import profiles
from ..inversion import LAYERS, runs
from ..inversion.information import distance_arrays, nearest_training_images, sample_inversions

__all__ = ["Models", "InvertingLayers", "RepresentationSpace", "GlobalPooling", "TrainingDynamics", "Trained",
           "trained_classifier", "nll_array", "LayerInversions", "layer_inversions", "samples_and_reconstructions",
           "RepresentationCheck", "representation_space", "other_inversions", "other_datasets", "table1_frame",
           "neighbours_and_samples", "layer_samples", "nats_table"]

LAYERS_PAGE = "nash2019/01-inverting-layers"
SPACE_PAGE = "nash2019/02-representation-space"
TABLE1_LAYERS = ("CONV1", "CONV2", "FC3")   # the layers of Table 1 (it has no LOGITS column)
POOLING = {"convolutional": "conv", "global pooling": "global_pool", "fully connected": "fc"}  # Section 5.2's nets


# ---------------------------------------------------------------------------------------------- the experiments


@profiles.experiment("nash2019.models", pages=(LAYERS_PAGE, SPACE_PAGE))
@dataclass(frozen=True)
class Models:
    """Sec. 5.1: the MNIST classifier and the inversion model of each of its layers (pages 1 and 2 share them)."""

    dataset: str = profiles.size("mnist10k (offline); mnist, svhn or cifar10 with real files", dataset="one")
    n_train: int = profiles.size("training images (classifier and inversion models; the 1NN pool)", unit="images")
    n_test: int = profiles.size("test images for the accuracy and the cross-entropies", unit="images")
    factor: int = profiles.size("images average-pooled by this factor (1: the paper's 28×28)")
    clf_steps: int = profiles.size("classifier updates", unit="steps")
    inv_steps: int = profiles.size("updates per inversion model", unit="steps")
    n_filters: int = profiles.size("PixelCNN++ width for grey images (64 in the paper)", unit="filters")
    colour_filters: int = profiles.size("PixelCNN++ width for svhn and cifar10 (196 in the paper)", unit="filters")
    n_res: int = profiles.size("residual layers per level of the PixelCNN++")
    inv_batch: int = profiles.size("batch size of the inversion models", unit="images")
    inv_dropout: float = profiles.size("most dropout of the inversion models (Appendix A: 0.5; 0.1 for CONV1 on "
                                       "SVHN and CIFAR-10)")
    n_seeds: int = profiles.size("seeds: classifiers and inversion models trained on the same images", unit="runs")
    more_datasets: tuple[str, ...] = profiles.size("the paper's other datasets (svhn, cifar10), each with classifiers "
                                                   "and inversion models of its own at these sizes", dataset="each")
    more_n_train: int = profiles.size("training images of each other dataset (0: its whole training split)",
                                      unit="images")
    more_n_test: int = profiles.size("test images of each other dataset (0: its whole test split)", unit="images")


@profiles.experiment("nash2019.inverting-layers", pages=(LAYERS_PAGE,))
@dataclass(frozen=True)
class InvertingLayers:
    """Fig. 1: samples and MSE reconstructions of a few test digits."""

    mse_steps: int = profiles.size("MSE decoder updates", unit="steps")
    n_show: int = profiles.size("test images shown with samples", unit="images")
    n_measure: int = profiles.size("test images whose two samples per layer measure Fig. 1's claims",
                                   unit="images")


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

    dataset: str = profiles.size("affmnist (offline); affnist with real files (its transformed canvases)",
                                 dataset="one")
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
    inv_dropout: float = profiles.size("most dropout of the inversion models (Appendix A: 0.5; 0.1 for CONV1 on "
                                       "SVHN and CIFAR-10)")
    mse_steps: int = profiles.size("MSE decoder updates", unit="steps")
    n_show: int = profiles.size("test canvases with samples (also those the position error is measured on)",
                                unit="images")
    n_draws: int = profiles.size("samples per canvas", unit="samples")
    n_position: int = profiles.size("test canvases the position error is measured on", unit="images")
    n_seeds: int = profiles.size("seeds: classifiers and inversion models trained on the same canvases",
                                 unit="runs")


@profiles.experiment("nash2019.training-dynamics", pages=("nash2019/04-training-dynamics",))
@dataclass(frozen=True)
class TrainingDynamics:
    """Sec. 5.3 and Fig. 5b: inversion models of classifier snapshots, regular and overfitted."""

    dataset: str = profiles.size("mnist10k (offline); mnist with real files", dataset="one")
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
    inv_dropout: float = profiles.size("most dropout of the inversion models (Appendix A: 0.5; 0.1 for CONV1 on "
                                       "SVHN and CIFAR-10)")
    n_seeds: int = profiles.size("seeds: classifiers and inversion models trained on the same images", unit="runs")


def _inversion_settings(sizes, n_filters: int, seed: int) -> dict:
    return dict(n_filters=n_filters, n_res=sizes.n_res, steps=sizes.inv_steps, batch_size=sizes.inv_batch,
                max_dropout=sizes.inv_dropout, seed=seed)


# ---------------------------------------------------------------------------------------------- pages 1 and 2


@dataclass(frozen=True)
class Trained:
    """The data, the classifier of each seed (specs, models, test accuracies) and the inversion settings."""

    data: runs.CoarseData
    specs: tuple
    models: tuple
    accuracies: tuple
    inversion: dict

    @property
    def spec(self) -> runs.ClassifierSpec:
        return self.specs[0]

    @property
    def model(self) -> torch.nn.Module:
        return self.models[0]

    @property
    def accuracy(self) -> float:
        """The mean test accuracy over the seeds."""
        return float(np.mean(self.accuracies))

    def settings(self, k: int) -> dict:
        """The inversion models' settings for seed ``k`` (its classifier's seed)."""
        return self.inversion | {"seed": self.specs[k].seed}


def trained_classifier(m: Models, seed: int = 0) -> Trained:
    """Setup of pages 1 and 2: the coarse images and Section 5.1's classifier for seeds ``seed`` … ``seed +
    m.n_seeds − 1``, all on the images that ``seed`` picks."""
    data = runs.coarse_data(m.dataset, m.n_train, m.n_test, m.factor, seed=seed)
    specs = tuple(runs.ClassifierSpec(m.dataset, "conv", m.n_train, m.factor, m.clf_steps, n_test=m.n_test,
                                      seed=seed + k, data_seed=seed) for k in range(m.n_seeds))
    models, accs = zip(*(runs.classifier(spec) for spec in specs))
    width = m.colour_filters if runs.is_colour(m.dataset) else m.n_filters
    settings = _inversion_settings(m, width, seed)
    settings.pop("seed")
    return Trained(data, specs, models, accs, settings)


def nll_array(ces) -> np.ndarray:
    """The per-image test NLLs of several cross-entropy dicts of :mod:`replab.inversion.runs` (one per seed) as
    an array (seeds, test images)."""
    return np.stack([np.asarray(ce["nll"], dtype=np.float64) for ce in ces])


@dataclass(frozen=True)
class LayerInversions:
    """The first seed's inversion model per layer, the per-image test NLLs (seeds, test images) per layer and of
    the unconditional model, and their table (:func:`nats_table`)."""

    models: dict
    nll: dict
    h_x: np.ndarray
    table: pd.DataFrame


def layer_inversions(t: Trained) -> LayerInversions:
    """Page 1's experiment: per seed, one inversion model per layer and one unconditional model, scored on the
    test images."""
    models, nll, uncond = {}, {layer: [] for layer in LAYERS}, []
    for k, (spec, clf) in enumerate(zip(t.specs, t.models)):
        for layer in LAYERS:
            model, ce = runs.inversion(spec, layer, t.data, **t.settings(k))
            nll[layer].append(ce)
            if k == 0:
                models[layer] = model
        uncond.append(runs.inversion(spec, None, t.data, **t.settings(k))[1])
    nll = {layer: nll_array(ces) for layer, ces in nll.items()}
    h_x = nll_array(uncond)
    return LayerInversions(models, nll, h_x, nats_table(nll, h_x, int(t.data.test[0].numel())))


def samples_and_reconstructions(t: Trained, inv: LayerInversions, e: InvertingLayers, seed: int = 0):
    """Fig. 1 (first seed): the first ``e.n_show`` test images and, per layer, two inversion samples then (after
    every layer's samples) the MSE reconstructions: ``(images, {column: images})``."""
    show = t.data.test[:e.n_show]
    samples, recons = {}, {}
    for layer in LAYERS:
        ctx = t.model.extract(t.data.full(show), layer)
        samples[f"{layer} samples"] = sample_inversions(inv.models[layer], ctx, n_samples=2, seed=seed)
        dec = runs.mse_decoder(t.spec, layer, t.data, steps=e.mse_steps, seed=seed)
        recons[layer + " MSE"] = dec.reconstruct(ctx)
    return show, {**samples, **recons}


def layer_samples(t: Trained, e: InvertingLayers, seed: int = 0) -> dict:
    """Fig. 1's measures: for each seed, two inversion samples per layer of each of the first ``e.n_measure``
    test images: ``{layer: uint8 (seeds, images, 2, C, H, W)}``."""
    images = t.data.test[:e.n_measure]
    out = {layer: [] for layer in LAYERS}
    for k, (spec, clf) in enumerate(zip(t.specs, t.models)):
        for layer in LAYERS:
            model, _ = runs.inversion(spec, layer, t.data, **t.settings(k))
            out[layer].append(sample_inversions(model, clf.extract(t.data.full(images), layer), n_samples=2,
                                                seed=seed))
    return {layer: torch.stack(v) for layer, v in out.items()}


@dataclass(frozen=True)
class RepresentationCheck:
    """Table 1 (one row per layer, means over seeds and images), its per-image distances ``{layer: {"1NN",
    "IM-S", "IM-NN": (seeds, images)}}``, the test images and the first seed's inversion samples per layer."""

    table: pd.DataFrame
    distances: dict
    images: torch.Tensor
    samples: dict


def representation_space(t: Trained, r: RepresentationSpace, seed: int = 0) -> RepresentationCheck:
    """Page 2's experiment: per seed, ``r.n_draws`` inversion samples of each of ``r.n_images`` test images per
    layer of Table 1 (:data:`TABLE1_LAYERS`), and the L1 distances of Table 1 (1NN, IM-S, IM-NN) per image."""
    images = t.data.test[:r.n_images]
    dist, samples = {layer: {} for layer in TABLE1_LAYERS}, {}
    for k, (spec, clf) in enumerate(zip(t.specs, t.models)):
        for layer in TABLE1_LAYERS:
            model, _ = runs.inversion(spec, layer, t.data, **t.settings(k))
            drawn = sample_inversions(model, clf.extract(t.data.full(images), layer), n_samples=r.n_draws,
                                      seed=seed)
            samples.setdefault(layer, drawn)
            d = distance_arrays(clf, layer, t.data.full(images), t.data.full(drawn), t.data.full(t.data.train),
                                seed=seed)
            for name, v in d.items():
                dist[layer].setdefault(name, []).append(v.double().numpy())
    dist = {layer: {name: np.stack(v) for name, v in ds.items()} for layer, ds in dist.items()}
    table = pd.DataFrame([{"layer": layer, **{name: float(v.mean()) for name, v in ds.items()}}
                          for layer, ds in dist.items()]).set_index("layer")
    return RepresentationCheck(table, dist, images, samples)


def _other_trained(m: Models, seed: int = 0):
    """``(dataset, Trained)`` for each of ``m.more_datasets``: that dataset's classifiers with the sizes of ``m``
    (colour images take ``m.colour_filters`` and Appendix A's logistic mixtures) on ``m.more_n_train`` training and
    ``m.more_n_test`` test images (0: the whole split, as in the paper). Pages 1 and 2 ask for the same ones."""
    for dataset in m.more_datasets:
        sizes = replace(m, dataset=dataset, n_train=m.more_n_train or len(_data.load(dataset, split="train")),
                        n_test=m.more_n_test or len(_data.load(dataset, split="test")), more_datasets=())
        yield dataset, trained_classifier(sizes, seed)


def other_inversions(m: Models, seed: int = 0) -> dict[str, LayerInversions]:
    """Fig. 5a on each of ``m.more_datasets`` (SVHN and CIFAR-10 at ``full``): :func:`layer_inversions` of that
    dataset's own classifiers and inversion models."""
    return {dataset: layer_inversions(t) for dataset, t in _other_trained(m, seed)}


def other_datasets(m: Models, r: RepresentationSpace, seed: int = 0) -> dict[str, RepresentationCheck]:
    """Table 1 on each of ``m.more_datasets`` (SVHN and CIFAR-10 at ``full``): :func:`representation_space` of
    that dataset's own classifiers and inversion models (those of :func:`other_inversions`)."""
    return {dataset: representation_space(t, r, seed) for dataset, t in _other_trained(m, seed)}


def table1_frame(checks: dict[str, RepresentationCheck]) -> pd.DataFrame:
    """Table 1 with a row per (dataset, layer): the mean L1 distances 1NN, IM-S and IM-NN of each check."""
    return pd.concat({name: c.table[["1NN", "IM-S", "IM-NN"]] for name, c in checks.items()},
                     names=["dataset", "layer"])


def neighbours_and_samples(t: Trained, check: RepresentationCheck) -> dict:
    """Fig. 2's columns: per layer of ``check``, the nearest training image in that layer's space, then the
    inversion samples."""
    out = {}
    for layer in check.samples:
        idx = nearest_training_images(t.model, layer, t.data.full(check.images), t.data.full(t.data.train))
        out[f"{layer} 1NN"] = t.data.train[idx]
        out[f"{layer} samples"] = check.samples[layer]
    return out


# ---------------------------------------------------------------------------------------------- tables


def _stderr(values: np.ndarray) -> float:
    """The standard error of the mean over test images of per-image values (seeds, images), averaged first over
    the seeds."""
    per_image = values.mean(0)
    return float(per_image.std(ddof=1) / math.sqrt(len(per_image))) if len(per_image) > 1 else float("nan")


def nats_table(nll: dict, h_x: np.ndarray | None = None, n_dims: int = 1) -> pd.DataFrame:
    """A DataFrame of cross-entropies per layer from per-image NLLs (seeds, test images): nats/image (the mean),
    ± stderr, bits/dim, NCE and (with ``h_x``, the unconditional model's) the information bound H*(x) − H*(x|h)
    in nats and bits/dim with its paired standard error."""
    rows = []
    for layer, v in nll.items():
        nats = float(v.mean())
        row = {"layer": layer, "nats/image": nats, "stderr": _stderr(v), "bits/dim": nats / (n_dims * math.log(2.0)),
               "NCE (nats)": -nats}
        if h_x is not None:
            row["I bound (nats)"] = float((h_x - v).mean())
            row["I bound stderr"] = _stderr(h_x - v)
            row["I bound (bits/dim)"] = row["I bound (nats)"] / (n_dims * math.log(2.0))
        rows.append(row)
    return pd.DataFrame(rows).set_index("layer")
