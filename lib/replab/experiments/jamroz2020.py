"""The experiments of Jamroż, Kurdziel & Opala (2020): the CNN grids of ``notebooks/jamroz2020`` 01 and 02 and what
every page of the paper shares (data, the CNN configuration; the VAE pages are in :mod:`.jamroz2020_vae`).

VGG-style nets of a given depth and width are trained with true labels, with one fixed random permutation of the
labels (memorising nets), with augmentation, dropout or both, ``n_nets`` seeds per setting, through
:func:`replab.grid.train_runs` (cached by configuration, so pages share the nets). Their kernel fingerprints
(:mod:`replab.fingerprints`) are modelled per layer by a DP-GMM and summarised by the relative entropy (Eq. 7).

Training follows the public code (reference notes §1.3): SGD with Nesterov momentum, lr 0.01, weight decay 1e-6,
Dropout2d(0.2). Sizes live in ``profiles/jamroz2020.toml``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import pandas as pd
import torch

from .. import data as _data
from .. import profiles
from ..data._base import resolve_root
from ..fingerprints import PAPER_LAYER_DIMS, fingerprints
from ..grid import train_runs
from ..models import VGGConfig, vgg_layout
from ..train import TrainConfig, TrainedRun
from ..train import classifier_targets as _fitted_targets
from ..train import load_data
from .jamroz2020_fits import _complexity_row, fit_dpgmms, layer_complexity

__all__ = ["CNNTraining", "Chain", "Fingerprinting", "Memorisation", "Regularisation", "REGULARISERS", "CONDITIONS",
           "cnn_config", "real_images", "probe_images", "normalise", "accuracy", "correctness", "layer_dims",
           "cnn_fingerprints", "fit_dpgmms", "layer_complexity", "classifier_targets", "has_labels", "train_size",
           "n_train", "steps", "image_shape", "memorisation_nets", "memorisation_complexity", "regularisation_nets",
           "regularisation_complexity", "groups", "grouped_complexity"]

_PAGES = ("jamroz2020/01-memorisation", "jamroz2020/02-regularisation")
# name -> (augmentation, Dropout2d rate) as in the public code's variants
REGULARISERS = {"none": (False, 0.0), "augmentation": (True, 0.0), "dropout": (False, 0.2), "both": (True, 0.2)}
CONDITIONS = {"true labels": "true", "random labels": "random"}   # page 01: label condition -> cnn_config labels
# per-channel input normalisation of the public code (CIFAR-10); other sets are used in [0, 1]
_NORMALISATION = {"cifar10": ((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261))}
_IMAGE = {"mnist10k": (1, 28), "mnist": (1, 28), "cifar10": (3, 32), "celeba": (3, 64)}
_LABELS = ("true", "random")
_DIGITS = ("mnist10k", "mnist")   # no horizontal flips when augmenting: a flip changes a digit's class


@dataclass(frozen=True)
class CNNTraining:
    """How a CNN of the grid (or the Fréchet classifier of the VAE pages) is trained."""

    dataset: str = profiles.size("dataset (mnist10k offline; cifar10 or celeba with real files)",
                                  dataset="one")
    depth: int = profiles.size("conv layers of the VGG-style net (8 or 11)")
    n_train: int = profiles.size("training images (0: the whole split)", unit="images")
    epochs: int = profiles.size("passes over the training images")
    batch_size: int = profiles.size("images per SGD step", unit="images")
    lr: float = profiles.size("SGD learning rate")


@dataclass(frozen=True)
class Chain:
    """The Gibbs chain of a DP-GMM and the Monte Carlo estimates of its divergences."""

    n_sweeps: int = profiles.size("Gibbs sweeps of the DP-GMM")
    burn_in: int = profiles.size("Gibbs sweeps dropped before keeping any")
    thin: int = profiles.size("keep every thin-th sweep after the burn-in")
    n_samples: int = profiles.size("Monte Carlo draws per kept sweep for the relative entropy (and total correlation)")


@dataclass(frozen=True)
class Fingerprinting(Chain):
    """The fingerprints of a grid, modelled per layer by a DP-GMM."""

    n_nets: int = profiles.size("networks per setting, from seeds seed, seed + 1, ...")
    n_groups: int = profiles.size("independent replicates: the nets of a setting split into this many groups of "
                                  "consecutive seeds, each group's fingerprints pooled and modelled alone")
    n_images: int = profiles.size("length of the fixed image sequence of the fingerprints", unit="images")
    d: int = profiles.size("SVD dimension of every layer (0: the public code's per-layer dimensions)")


@profiles.experiment("jamroz2020.memorisation", pages=_PAGES[:1])
@dataclass(frozen=True)
class Memorisation(Fingerprinting, CNNTraining):
    """Sec. 4, Fig. 1: true-label and memorising (random-label) nets of one width."""

    width: int = profiles.size("channels of the last conv layer (the others scale with it)")


@profiles.experiment("jamroz2020.regularisation", pages=_PAGES[1:])
@dataclass(frozen=True)
class Regularisation(Fingerprinting, CNNTraining):
    """Sec. 4, App. C: true-label nets with each regulariser at each width."""

    widths: tuple[int, ...] = profiles.size("channels of the last conv layer, one grid per width")
    regularisers: tuple[str, ...] = profiles.size('subset of "none", "augmentation", "dropout", "both"')


def image_shape(dataset: str) -> tuple[int, int]:
    """(channels, side) of the images of ``dataset``."""
    if dataset not in _IMAGE:
        raise ValueError(f"dataset: expected one of {sorted(_IMAGE)}, got {dataset!r}")
    return _IMAGE[dataset]


def _data_root() -> str:
    # the facts below are cached per dataset and data folder: REPLAB_DATA may point elsewhere later
    return str(resolve_root(None))


def train_size(dataset: str) -> int:
    """Images in the training split of ``dataset``."""
    return _train_size_in(dataset, _data_root())


@lru_cache(maxsize=None)
def _train_size_in(dataset: str, root: str) -> int:
    return len(_data.load(dataset, split="train"))


def classifier_targets(dataset: str) -> tuple[str, int] | None:
    """What a classifier of ``dataset`` learns: ``("cross_entropy", 10)`` for class labels (the ten classes of
    every labelled set here), ``("binary_cross_entropy", A)`` for A binary attributes and no labels (CelebA), or
    None when the dataset has neither (CelebA without its attribute file)."""
    return _targets_in(dataset, _data_root())


@lru_cache(maxsize=None)
def _targets_in(dataset: str, root: str) -> tuple[str, int] | None:
    ds = _data.load(dataset, split="test")
    if ds.labels is not None:
        return "cross_entropy", 10
    if ds.attributes is not None:
        return "binary_cross_entropy", len(ds.attribute_names)
    return None


def has_labels(dataset: str) -> bool:
    """Whether ``dataset`` has targets to train a classifier on: class labels, or binary attributes (CelebA with
    ``list_attr_celeba.txt``)."""
    return classifier_targets(dataset) is not None


def n_train(dataset: str, n: int | None) -> int:
    """The number of training images ``n`` stands for: all of the split for None or 0."""
    size = train_size(dataset)
    if n is None or n == 0:
        return size
    if not (isinstance(n, int) and 0 < n <= size):
        raise ValueError(f"n_train: expected an integer in [1, {size}] (or None for all), got {n!r}")
    return n


def steps(n: int, epochs: int, batch_size: int) -> int:
    """Optimiser steps of ``epochs`` passes over ``n`` images in batches of ``batch_size`` (last one dropped)."""
    if not (isinstance(epochs, int) and epochs > 0):
        raise ValueError(f"epochs: expected a positive integer, got {epochs!r}")
    if not (isinstance(batch_size, int) and 0 < batch_size <= n):
        raise ValueError(f"batch_size: expected an integer in [1, {n}], got {batch_size!r}")
    return epochs * (n // batch_size)


def cnn_config(training: CNNTraining, width: int, *, labels: str = "true", regulariser: str = "none",
               seed: int = 0, device: str = "auto") -> TrainConfig:
    """The training configuration of one CNN of the grid (public code's ``SHARED_OPTS``, reference notes §1.3).

    ``labels="random"`` trains on one fixed random permutation of the labels (the same for every seed);
    ``regulariser`` is a key of :data:`REGULARISERS` (augmentation: a random crop, with a horizontal flip except
    on digits). ``training.n_train`` images are drawn once (0: all). On a
    set without class labels but with binary attributes (CelebA) the net has one logistic output per attribute and
    learns them all with binary cross-entropy (``labels="random"`` then permutes the attribute rows).
    """
    if labels not in _LABELS:
        raise ValueError(f"labels: expected one of {_LABELS}, got {labels!r}")
    if regulariser not in REGULARISERS:
        raise ValueError(f"regulariser: expected one of {tuple(REGULARISERS)}, got {regulariser!r}")
    dataset, batch_size = training.dataset, training.batch_size
    channels, size = image_shape(dataset)
    augment, dropout = REGULARISERS[regulariser]
    n = n_train(dataset, training.n_train or None)
    mean, std = _NORMALISATION.get(dataset, (None, None))
    targets = classifier_targets(dataset)
    if targets is None:
        raise ValueError(f"dataset {dataset!r} has neither class labels nor binary attributes to train a CNN on")
    objective, n_outputs = targets
    model = VGGConfig(layout=vgg_layout(training.depth, width), n_classes=n_outputs, channels=channels,
                      image_size=size, dropout=dropout)
    return TrainConfig(model=model, objective=objective, dataset=dataset, split="train",
                       n=None if n == train_size(dataset) else n, subset_seed=0, batch_size=batch_size,
                       steps=steps(n, training.epochs, batch_size), lr=training.lr, optimizer="sgd", momentum=0.9,
                       nesterov=True, weight_decay=1e-6, seed=seed, random_labels=labels == "random",
                       label_seed=0, augment=augment, crop_padding=4, flip=not (augment and dataset in _DIGITS),
                       normalize_mean=mean, normalize_std=std, checkpoint_every=10_000, log_every=10, device=device)


def real_images(dataset: str = "mnist10k", n: int = 1000, seed: int = 0, split: str = "test") -> torch.Tensor:
    """``n`` images of ``split`` drawn once with ``seed``, float in [0, 1], shape (n, C, H, W)."""
    ds = _data.load(dataset, split=split)
    if not (isinstance(n, int) and 0 < n <= len(ds)):
        raise ValueError(f"n: expected an integer in [1, {len(ds)}], got {n!r}")
    return ds.sample(n, seed=seed).images.float() / 255.0


def probe_images(dataset: str = "mnist10k", n: int = 1000, seed: int = 0, split: str = "test") -> torch.Tensor:
    """The fixed image sequence of the fingerprints: ``n`` images of ``split``, normalised as in training."""
    return normalise(real_images(dataset, n, seed, split), dataset)


def normalise(x: torch.Tensor, dataset: str) -> torch.Tensor:
    """Images in [0, 1] normalised per channel as the public code trains on ``dataset`` (unchanged elsewhere)."""
    if dataset in _NORMALISATION:
        mean, std = (torch.tensor(v)[:, None, None] for v in _NORMALISATION[dataset])
        return (x - mean) / std
    return x


@torch.no_grad()
def correctness(run: TrainedRun, split: str = "test", n: int | None = None, batch_size: int = 1000) -> torch.Tensor:
    """Per image of ``split`` (its training subset, with its own labels, for "train"): 1 where the classifier is
    right, 0 where wrong; for a multi-label classifier (binary attributes) the fraction of attributes it gets
    right. A float64 tensor of length ``n`` (default all)."""
    cfg = run.config
    multi = cfg.multi_label
    if split == "train":  # the exact images and (permuted) labels it was fit on
        images, labels = load_data(cfg, None, run.model.input_shape)
        labels = _fitted_targets(cfg, labels, len(images))
    else:
        ds = _data.load(cfg.dataset, split=split)
        images, labels = ds.images, (ds.attributes if multi else ds.labels)
    if n is not None:
        images, labels = images[:n], labels[:n]
    dev = next(run.model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        x = normalise(images[start:start + batch_size].float() / 255.0, cfg.dataset).to(dev)
        logits, y = run.model(x).cpu(), labels[start:start + batch_size]
        # multi-label: a logit above 0 (probability above ½) says present
        out.append(((logits > 0).long() == y.long()).double().mean(1) if multi
                   else (logits.argmax(1) == y).double())
    return torch.cat(out)


def accuracy(run: TrainedRun, split: str = "test", n: int | None = None, batch_size: int = 1000) -> float:
    """Accuracy of a trained classifier on ``split`` (the mean of :func:`correctness`); for a multi-label
    classifier the mean over attributes of the per-attribute accuracy."""
    return float(correctness(run, split, n, batch_size).mean())


def layer_dims(d: int, depth: int, layers: Sequence[str]) -> dict[str, int]:
    """``{layer: d}``: one ``d`` for every layer, or for ``d = 0`` the public code's per-layer dimensions."""
    if d == 0:
        if depth not in PAPER_LAYER_DIMS:
            raise ValueError(f"d=0 (the paper's dimensions) needs depth in {sorted(PAPER_LAYER_DIMS)}, got {depth!r}")
        return dict(zip(layers, PAPER_LAYER_DIMS[depth]))
    if not (isinstance(d, int) and d > 0):
        raise ValueError(f"d: expected a positive integer or 0 (the paper's), got {d!r}")
    return {name: d for name in layers}


def cnn_fingerprints(runs: Sequence[TrainedRun], images: torch.Tensor, d: int, center: bool = False
                     ) -> dict[str, torch.Tensor]:
    """Fingerprints of every conv layer, pooled over ``runs`` (same architecture) and reduced to ``d`` dimensions.

    ``d`` is capped per layer at ``n·C − 1`` so the DP-GMM has more points than dimensions.
    """
    runs = list(runs)
    if not runs:
        raise ValueError("runs: expected at least one trained network")
    layout = runs[0].config.model.layout
    layers = [f"conv.{i}" for i in range(1, len(layout) + 1)]
    dims = layer_dims(d, len(layout), layers)
    dims = {name: min(dims[name], len(runs) * c - 1, images.shape[0]) for name, (c, _) in zip(layers, layout)}
    return fingerprints([r.model for r in runs], images, dims, layers=layers, center=center)


# -- the sections of the pages -----------------------------------------------------------------------------------------
def memorisation_nets(m: Memorisation, seed: int = 0, n_jobs: int = 1) -> tuple[dict, pd.DataFrame]:
    """Page 01, setup: ``n_nets`` nets per label condition of :data:`CONDITIONS` (``{condition: runs}``) and their
    train and test accuracy (one row per net)."""
    runs = {name: train_runs([cnn_config(m, m.width, labels=labels, seed=seed + i) for i in range(m.n_nets)],
                             n_jobs=n_jobs)
            for name, labels in CONDITIONS.items()}
    table = pd.DataFrame([{"condition": name, "seed": seed + i, "train accuracy": accuracy(r, "train"),
                           "test accuracy": accuracy(r, "test")}
                          for name, rs in runs.items() for i, r in enumerate(rs)])
    return runs, table


def groups(runs: Sequence[TrainedRun], n_groups: int) -> list[list[TrainedRun]]:
    """``runs`` (in seed order) split into ``n_groups`` disjoint groups of consecutive seeds, equal in size."""
    runs = list(runs)
    if not (isinstance(n_groups, int) and n_groups > 0 and len(runs) % n_groups == 0):
        raise ValueError(f"n_groups: expected a positive divisor of the {len(runs)} nets, got {n_groups!r}")
    k = len(runs) // n_groups
    return [runs[i * k:(i + 1) * k] for i in range(n_groups)]


def grouped_complexity(runs: dict, f: Fingerprinting, seed: int = 0, n_jobs: int = 1, **columns) -> pd.DataFrame:
    """:func:`layer_complexity` of every setting of ``runs`` (``{setting: nets}``) and every group of its nets
    (:func:`groups`, column ``group``); ``columns`` names the parts of a setting key (``condition="..."``: the
    key itself; ``width=0, regulariser=1``: positions in a tuple key). The DP-GMMs of every setting, group and
    layer are fitted together, over ``n_jobs`` worker processes (:func:`fit_dpgmms`)."""
    images = probe_images(f.dataset, f.n_images, seed=seed)
    parts = []   # (labels, {layer: points}) per setting and group
    for key, rs in runs.items():
        labels = {name: key if len(columns) == 1 else key[pos] for name, pos in columns.items()}
        for g, members in enumerate(groups(rs, f.n_groups)):
            parts.append(({"group": g, **labels}, cnn_fingerprints(members, images, f.d)))
    sets = [x for _, points in parts for x in points.values()]
    models = iter(fit_dpgmms(sets, f, [seed] * len(sets), n_jobs))
    rows = [_complexity_row(next(models), x, i, name, f, seed, labels)
            for labels, points in parts for i, (name, x) in enumerate(points.items(), start=1)]
    return pd.DataFrame(rows)


def memorisation_complexity(runs: dict, m: Memorisation, seed: int = 0, n_jobs: int = 1) -> pd.DataFrame:
    """Page 01, experiment: :func:`grouped_complexity` of each condition (column ``condition``), its DP-GMMs fitted
    over ``n_jobs`` processes."""
    return grouped_complexity(runs, m, seed, n_jobs, condition=0)


def regularisation_nets(r: Regularisation, seed: int = 0, n_jobs: int = 1) -> tuple[dict, pd.DataFrame]:
    """Page 02, setup: ``n_nets`` true-label nets per (width, regulariser) (``{(width, regulariser): runs}``) and
    their test accuracy (one row per net)."""
    runs = {(w, reg): train_runs([cnn_config(r, w, regulariser=reg, seed=seed + i) for i in range(r.n_nets)],
                                 n_jobs=n_jobs)
            for w in r.widths for reg in r.regularisers}
    table = pd.DataFrame([{"width": w, "regulariser": reg, "test accuracy": accuracy(run, "test")}
                          for (w, reg), rs in runs.items() for run in rs])
    return runs, table


def regularisation_complexity(runs: dict, r: Regularisation, seed: int = 0, n_jobs: int = 1) -> pd.DataFrame:
    """Page 02, experiment: :func:`grouped_complexity` of every setting (columns ``width`` and ``regulariser``), its
    DP-GMMs fitted over ``n_jobs`` processes."""
    return grouped_complexity(runs, r, seed, n_jobs, width=0, regulariser=1)
