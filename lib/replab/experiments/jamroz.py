"""The experiments of Jamroż, Kurdziel & Opala (2020), shared by the five pages of ``notebooks/jamroz2020``.

- CNN grids (Section 4, App. C): VGG-style nets of a given depth and width trained with true labels, with one fixed
  random permutation of the labels (memorising nets), with augmentation, dropout or both, ``n`` seeds per setting,
  through the grid runner :mod:`replab.grid` (cached by configuration, so pages share the nets). Their kernel
  fingerprints (:mod:`replab.fingerprints`) are modelled per layer by a DP-GMM and summarised by the relative
  entropy (Eq. 7).
- VAE β-sweeps (Section 5): β-VAEs and MMD-VAEs; the DP-GMM of the sampled test-set codes gives the relative
  entropy and the total correlation (Eqs. 7 and 10) of the aggregated posterior, and a sampler for latent codes.
- Sample quality (Section 5.2, Fig. 4, made numeric here): the Fréchet distance between features of a classifier
  trained on the same data, for real and decoded images, and that classifier's confidence on the decoded images.
  On a labelled set the classifier learns the classes (cross-entropy); on CelebA, which has no classes, it learns
  the 40 binary attributes of ``list_attr_celeba.txt`` (one logistic output each, binary cross-entropy).

Training settings follow the public code (reference notes §1.3 and §1.5): SGD with Nesterov momentum, lr 0.01,
weight decay 1e-6 and Dropout2d(0.2) for the CNNs; Adam, σ² = 0.3 for the β-VAE's Gaussian decoder, a plain SSE
(σ² = 0.5) and the prior N(0, 2I) for the MMD-VAE. Sizes live in ``profiles/jamroz2020.toml``.
"""
from __future__ import annotations

import math
from dataclasses import asdict
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .. import data as _data
from ..activations import capture
from ..cache import ArtifactCache
from ..data._base import resolve_root
from ..distributions import student_t_marginal_mixture
from ..dpgmm import DPGMM, relative_entropy, total_correlation
from ..fingerprints import PAPER_LAYER_DIMS, fingerprints
from ..similarity.frechet import frechet_distance
from ..models import MLPConfig, VGGConfig, WAECelebAConfig, vgg_layout
from ..grid import train_runs
from ..train import TrainConfig, TrainedRun

__all__ = ["REGULARISERS", "cnn_config", "train_runs", "real_images", "probe_images", "accuracy", "layer_dims",
           "cnn_fingerprints", "layer_complexity", "vae_config", "prior_variance", "latent_codes", "fit_latents",
           "latent_information", "draw_codes", "decode", "classifier_outputs", "frechet_distance", "has_labels",
           "frechet_setup", "sample_quality", "classifier_targets"]

# name -> (augmentation, Dropout2d rate) as in the public code's variants
REGULARISERS = {"none": (False, 0.0), "augmentation": (True, 0.0), "dropout": (False, 0.2), "both": (True, 0.2)}
# per-channel input normalisation of the public code (CIFAR-10); other sets are used in [0, 1]
_NORMALISATION = {"cifar10": ((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261))}
_IMAGE = {"mnist10k": (1, 28), "mnist": (1, 28), "cifar10": (3, 32), "celeba": (3, 64)}
_LABELS = ("true", "random")


def _image_shape(dataset: str) -> tuple[int, int]:
    if dataset not in _IMAGE:
        raise ValueError(f"dataset: expected one of {sorted(_IMAGE)}, got {dataset!r}")
    return _IMAGE[dataset]


def _data_root() -> str:
    # the facts below are cached per dataset and data folder: REPLAB_DATA may point elsewhere later
    return str(resolve_root(None))


def _train_size(dataset: str) -> int:
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


def _n_train(dataset: str, n_train: int | None) -> int:
    size = _train_size(dataset)
    if n_train is None or n_train == 0:
        return size
    if not (isinstance(n_train, int) and 0 < n_train <= size):
        raise ValueError(f"n_train: expected an integer in [1, {size}] (or None for all), got {n_train!r}")
    return n_train


def _steps(n: int, epochs: int, batch_size: int) -> int:
    if not (isinstance(epochs, int) and epochs > 0):
        raise ValueError(f"epochs: expected a positive integer, got {epochs!r}")
    if not (isinstance(batch_size, int) and 0 < batch_size <= n):
        raise ValueError(f"batch_size: expected an integer in [1, {n}], got {batch_size!r}")
    return epochs * (n // batch_size)


# -- CNN grids ---------------------------------------------------------------------------------------------------------
def cnn_config(dataset: str = "mnist10k", depth: int = 8, width: int = 64, labels: str = "true",
               regulariser: str = "none", seed: int = 0, n_train: int | None = None, epochs: int = 30,
               batch_size: int = 512, lr: float = 0.01, device: str = "auto") -> TrainConfig:
    """The training configuration of one CNN of the grid (public code's ``SHARED_OPTS``, reference notes §1.3).

    ``labels="random"`` trains on one fixed random permutation of the labels (the same for every seed);
    ``regulariser`` is a key of :data:`REGULARISERS`. ``n_train`` training images drawn once (None: all). On a set
    without class labels but with binary attributes (CelebA) the net has one logistic output per attribute and
    learns them all with binary cross-entropy (``labels="random"`` then permutes the attribute rows).
    """
    if labels not in _LABELS:
        raise ValueError(f"labels: expected one of {_LABELS}, got {labels!r}")
    if regulariser not in REGULARISERS:
        raise ValueError(f"regulariser: expected one of {tuple(REGULARISERS)}, got {regulariser!r}")
    channels, size = _image_shape(dataset)
    augment, dropout = REGULARISERS[regulariser]
    n = _n_train(dataset, n_train)
    mean, std = _NORMALISATION.get(dataset, (None, None))
    targets = classifier_targets(dataset)
    if targets is None:
        raise ValueError(f"dataset {dataset!r} has neither class labels nor binary attributes to train a CNN on")
    objective, n_outputs = targets
    model = VGGConfig(layout=vgg_layout(depth, width), n_classes=n_outputs, channels=channels, image_size=size,
                      dropout=dropout)
    return TrainConfig(model=model, objective=objective, dataset=dataset, split="train",
                       n=None if n == _train_size(dataset) else n, subset_seed=0,
                       batch_size=batch_size, steps=_steps(n, epochs, batch_size), lr=lr, optimizer="sgd",
                       momentum=0.9, nesterov=True, weight_decay=1e-6, seed=seed, random_labels=labels == "random",
                       label_seed=0, augment=augment, crop_padding=4, normalize_mean=mean, normalize_std=std,
                       checkpoint_every=10_000, log_every=10, device=device)


def real_images(dataset: str = "mnist10k", n: int = 1000, seed: int = 0, split: str = "test") -> torch.Tensor:
    """``n`` images of ``split`` drawn once with ``seed``, float in [0, 1], shape (n, C, H, W)."""
    ds = _data.load(dataset, split=split)
    if not (isinstance(n, int) and 0 < n <= len(ds)):
        raise ValueError(f"n: expected an integer in [1, {len(ds)}], got {n!r}")
    return ds.sample(n, seed=seed).images.float() / 255.0


def probe_images(dataset: str = "mnist10k", n: int = 1000, seed: int = 0, split: str = "test") -> torch.Tensor:
    """The fixed image sequence of the fingerprints: ``n`` images of ``split``, normalised as in training."""
    return _normalise(real_images(dataset, n, seed, split), dataset)


def _normalise(x: torch.Tensor, dataset: str) -> torch.Tensor:
    if dataset in _NORMALISATION:
        mean, std = (torch.tensor(v)[:, None, None] for v in _NORMALISATION[dataset])
        return (x - mean) / std
    return x


@torch.no_grad()
def accuracy(run: TrainedRun, split: str = "test", n: int | None = None, batch_size: int = 1000) -> float:
    """Accuracy of a trained classifier on ``split`` (its training subset, with its own labels, for "train"); for a
    multi-label classifier (binary attributes) the mean over attributes of the per-attribute accuracy."""
    cfg = run.config
    multi = run.config.multi_label
    if split == "train":
        from ..train import classifier_targets, load_data  # the exact images and (permuted) labels it was fit on

        images, labels = load_data(cfg, None, run.model.input_shape)
        labels = classifier_targets(cfg, labels, len(images))
    else:
        ds = _data.load(cfg.dataset, split=split)
        images, labels = ds.images, (ds.attributes if multi else ds.labels)
    if n is not None:
        images, labels = images[:n], labels[:n]
    dev = next(run.model.parameters()).device
    correct = 0
    for start in range(0, len(images), batch_size):
        x = _normalise(images[start:start + batch_size].float() / 255.0, cfg.dataset).to(dev)
        out, y = run.model(x).cpu(), labels[start:start + batch_size]
        # multi-label: a logit above 0 (probability above ½) says present
        correct += float(((out > 0).long() == y.long()).double().mean(1).sum()) if multi \
            else int((out.argmax(1) == y).sum())
    return correct / len(images)


def layer_dims(d: int | str, depth: int, layers: Sequence[str]) -> dict[str, int]:
    """``{layer: d}``: one ``d`` for every layer, or ``"paper"`` for the public code's per-layer dimensions."""
    if d == "paper":
        if depth not in PAPER_LAYER_DIMS:
            raise ValueError(f"d='paper' needs depth in {sorted(PAPER_LAYER_DIMS)}, got {depth!r}")
        return dict(zip(layers, PAPER_LAYER_DIMS[depth]))
    if not (isinstance(d, int) and d > 0):
        raise ValueError(f"d: expected a positive integer or 'paper', got {d!r}")
    return {name: d for name in layers}


def cnn_fingerprints(runs: Sequence[TrainedRun], images: torch.Tensor, d: int | str, center: bool = False
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


def _information_row(model: DPGMM, estimate) -> dict:
    return {"mean": estimate.mean, "min": estimate.min, "max": estimate.max,
            "components": float(model.n_components_.double().mean())}


def layer_complexity(points: Mapping[str, torch.Tensor], n_sweeps: int, burn_in: int, thin: int, n_samples: int,
                     seed: int = 0, **labels) -> pd.DataFrame:
    """Relative entropy (Eq. 7) of the DP-GMM of each layer's fingerprints: one row per layer.

    Columns: ``layer`` (1-based index), ``mean``/``min``/``max`` over kept sweeps, ``components`` (mean count),
    ``n_points``, ``d``, and every keyword of ``labels`` (e.g. ``condition="random"``) as a constant column.
    """
    rows = []
    for i, (name, x) in enumerate(points.items(), start=1):
        model = DPGMM(n_sweeps=n_sweeps, burn_in=burn_in, thin=thin, seed=seed).fit(x)
        re = relative_entropy(model, n_samples=n_samples, seed=seed)
        rows.append({**labels, "layer": i, "name": name, **_information_row(model, re), "n_points": x.shape[0],
                     "d": x.shape[1]})
    return pd.DataFrame(rows)


# -- VAE β-sweeps ------------------------------------------------------------------------------------------------------
def prior_variance(config: TrainConfig) -> float:
    """The variance of the VAE's prior: 2 for the MMD-VAE of the public code, 1 for the β-VAE."""
    return float(config.objective_params.get("prior_variance", 2.0)) if config.objective == "mmd_vae" else 1.0


def vae_config(objective: str = "beta_vae", beta: float = 1.0, dataset: str = "mnist10k", arch: str = "mlp",
               latent_dim: int = 8, widths: Sequence[int] = (128, 256, 512, 1024), n_train: int | None = None,
               epochs: int = 60, batch_size: int = 64, lr: float = 1e-4, seed: int = 0, device: str = "auto"
               ) -> TrainConfig:
    """One VAE of the β-sweep: ``objective`` "beta_vae" (KL) or "mmd_vae" (IMQ MMD, prior N(0, 2I)).

    ``arch="mlp"`` is the MLP VAE (for 28×28 digits), ``"wae"`` the WAE CelebA conv VAE with ``widths``. The
    Gaussian decoder has σ² = 0.3 for the β-VAE and σ² = 0.5 (a plain SSE) for the MMD-VAE, as the public code.
    """
    if objective not in ("beta_vae", "mmd_vae"):
        raise ValueError(f"objective: expected 'beta_vae' or 'mmd_vae', got {objective!r}")
    if not (isinstance(beta, (int, float)) and beta > 0):
        raise ValueError(f"beta: expected a positive number, got {beta!r}")
    channels, size = _image_shape(dataset)
    variance = 0.3 if objective == "beta_vae" else 0.5
    if arch == "mlp":
        model = MLPConfig(latent_dim=latent_dim, input_shape=(channels, size, size), likelihood="gaussian",
                          output_variance=variance)
    elif arch == "wae":
        model = WAECelebAConfig(latent_dim=latent_dim, channels=channels, image_size=size, widths=tuple(widths),
                                output_variance=variance)
    else:
        raise ValueError(f"arch: expected 'mlp' or 'wae', got {arch!r}")
    params = {"beta": float(beta)}
    if objective == "mmd_vae":
        params.update(prior_variance=2.0, unbiased=False)
    n = _n_train(dataset, n_train)
    full = _train_size(dataset)
    return TrainConfig(model=model, objective=objective, objective_params=params, dataset=dataset, split="train",
                       n=None if n == full else n, batch_size=batch_size, steps=_steps(n, epochs, batch_size), lr=lr,
                       optimizer="adam", seed=seed, checkpoint_every=10_000, log_every=10, device=device)


@torch.no_grad()
def latent_codes(model, images: torch.Tensor, seed: int = 0, batch_size: int = 500, sampled: bool = True
                 ) -> torch.Tensor:
    """Latent codes of ``images`` (uint8 or float in [0, 1]): reparameterised samples z ~ q(z|x), as the public
    code clusters (``sampled=False`` gives the posterior means). float64, shape (n, d)."""
    dev = next(model.parameters()).device
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    g = torch.Generator(device=dev)
    g.manual_seed(seed)
    out = []
    for start in range(0, len(x), batch_size):
        mu, logvar = model.encode(x[start:start + batch_size].to(dev))
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g, device=dev) if sampled else mu
        out.append(z.double().cpu())
    return torch.cat(out)


def fit_latents(run: TrainedRun, n_codes: int | None, n_sweeps: int, burn_in: int, thin: int, seed: int = 0,
                split: str = "test") -> tuple[DPGMM, torch.Tensor]:
    """The DP-GMM of the sampled codes of ``n_codes`` images of ``split`` (None: all): ``(fitted DPGMM, codes)``."""
    ds = _data.load(run.config.dataset, split=split)
    if n_codes and n_codes < len(ds):  # None or 0: every image of the split
        ds = ds.sample(n_codes, seed=seed)
    z = latent_codes(run.model, ds.images, seed=seed)
    return DPGMM(n_sweeps=n_sweeps, burn_in=burn_in, thin=thin, seed=seed).fit(z), z


def latent_information(run: TrainedRun, n_codes: int | None, n_sweeps: int, burn_in: int, thin: int,
                       n_samples: int, seed: int = 0, cache: ArtifactCache | None = None) -> dict:
    """Relative entropy (Eq. 7), total correlation (Eq. 10) and component count of the aggregated posterior.

    Returns ``{"re": {mean, min, max, per_trace}, "tc": {...}, "components": float, "active": int}``, cached
    under kind ``"jamroz-latent"`` so the pages that need it share one DP-GMM run per VAE.
    """
    cache = ArtifactCache() if cache is None else cache
    key = {"run": run.key or asdict(run.config), "n_codes": n_codes, "n_sweeps": n_sweeps, "burn_in": burn_in,
           "thin": thin, "n_samples": n_samples, "seed": seed}

    def compute():
        model, _ = fit_latents(run, n_codes, n_sweeps, burn_in, thin, seed)
        out = {"components": float(model.n_components_.double().mean())}
        for name, fn in (("re", relative_entropy), ("tc", total_correlation)):
            est = fn(model, n_samples=n_samples, seed=seed)
            out[name] = {"mean": est.mean, "min": est.min, "max": est.max, "per_trace": est.per_trace}
        return out

    # get_or_compute holds the key's lock: two pages needing the same DP-GMM run compute it once
    return cache.get_or_compute("jamroz-latent", key, compute)


def draw_codes(source: str, n: int, seed: int = 0, model: DPGMM | None = None, latent_dim: int | None = None,
               variance: float = 1.0, trace_index: int = -1) -> torch.Tensor:
    """``n`` latent codes (float32) from one of four sources.

    - ``"prior"``: N(0, variance·I) in ``latent_dim`` dimensions;
    - ``"joint"``: the DP-GMM posterior predictive p(z*) (Eq. 6, averaged over kept sweeps);
    - ``"trace"``: p(z* | c) given one kept sweep (``trace_index``, default the last), the sampler of Section 5.2;
    - ``"factorial"``: the product of the predictive's marginals p_ind(z*) (Eq. 8), every dimension drawn alone.
    """
    if not (isinstance(n, int) and n > 0):
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if source == "prior":
            if not (isinstance(latent_dim, int) and latent_dim > 0):
                raise ValueError(f"latent_dim: expected a positive integer for prior codes, got {latent_dim!r}")
            return torch.randn(n, latent_dim) * math.sqrt(variance)
        if model is None:
            raise ValueError(f"model: a fitted DPGMM is needed to draw {source!r} codes")
        if source == "joint":
            return model.sample(n, seed=seed).float()
        if source == "trace":
            return model.predictive(trace_index=trace_index, device="cpu").sample((n,)).float()
        if source == "factorial":
            dist = model.predictive(device="cpu")
            comp = dist.component_distribution
            marginals = student_t_marginal_mixture(dist.mixture_distribution.probs, comp.df, comp.loc,
                                                   comp.marginal_scale)
            return marginals.sample((n,)).float()
    raise ValueError(f"source: expected 'prior', 'joint', 'trace' or 'factorial', got {source!r}")


@torch.no_grad()
def decode(model, z: torch.Tensor) -> torch.Tensor:
    """Images decoded from codes z (n, d): the decoder's mean, clipped to [0, 1] (shape (n, C, H, W))."""
    dev = next(model.parameters()).device
    out = model.decode(z.float().to(dev))
    out = torch.sigmoid(out) if model.likelihood == "bernoulli" else out
    return out.clamp(0, 1).cpu()


# -- sample quality ----------------------------------------------------------------------------------------------------
@torch.no_grad()
def classifier_outputs(run: TrainedRun, images: torch.Tensor, batch_size: int = 500
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (the last block's globally average-pooled output) and output probabilities of a classifier, from
    one pass over ``images`` (floats in [0, 1] or uint8, normalised here as the classifier was trained): softmax
    class probabilities (n, classes), or for a multi-label classifier each attribute's sigmoid (n, attributes)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images: expected a tensor of shape (n, C, H, W), got {got}")
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    x = _normalise(x, run.config.dataset)
    last = f"block.{len(run.config.model.layout)}"
    dev = next(run.model.parameters()).device
    out = capture(run.model, x, layers=[last, "output"], reduce="gap", batch_size=batch_size, device=dev)
    logits = out["output"].double()
    return out[last].double(), torch.sigmoid(logits) if run.config.multi_label else torch.softmax(logits, 1)


def has_labels(dataset: str) -> bool:
    """Whether ``dataset`` has targets to train the Fréchet classifier on: class labels, or binary attributes (CelebA
    with ``list_attr_celeba.txt``)."""
    return classifier_targets(dataset) is not None


def sample_quality(classifier: TrainedRun, images: torch.Tensor, reference: torch.Tensor) -> dict:
    """Fréchet distance of ``images`` to ``reference`` on the classifier's features, and the classifier's
    confidence on ``images``: the mean top-class probability, or for a multi-label classifier the mean over images
    and attributes of max(p, 1 − p), how sure it is of each attribute either way (½ is a coin toss, 1 certainty).

    ``reference`` is either real images (n, C, H, W) or their features from :func:`classifier_outputs` (n, F),
    which :func:`frechet_setup` returns so that the real images pass through the classifier once per page.
    """
    fa, pa = classifier_outputs(classifier, images)
    fr = reference if torch.as_tensor(reference).ndim == 2 else classifier_outputs(classifier, reference)[0]
    sure = torch.maximum(pa, 1.0 - pa).mean(1) if classifier.config.multi_label else pa.max(1).values
    return {"fd": frechet_distance(fa, fr), "confidence": float(sure.mean())}


def frechet_setup(dataset: str, depth: int, width: int, n_train: int | None, epochs: int, batch_size: int,
                  n_real: int, seed: int = 0, cache: ArtifactCache | None = None):
    """The classifier of the Fréchet distance and its reference: ``(classifier, reference, floor)``.

    The classifier is the true-label CNN of :func:`cnn_config` with these sizes and ``seed`` (at ``quick`` the
    first net of the memorisation page, shared through the cache); ``reference`` holds the classifier's features of
    ``n_real`` real test images (at most the split), for :func:`sample_quality`; ``floor`` is :func:`sample_quality` of
    as many real training images against them. On CelebA the classifier learns the binary attributes (see
    :func:`cnn_config`). Returns ``(None, None, None)`` when the dataset has neither labels nor attributes.
    """
    if not has_labels(dataset):
        return None, None, None
    config = cnn_config(dataset, depth, width, seed=seed, n_train=n_train or None, epochs=epochs,
                        batch_size=batch_size)
    classifier = train_runs([config], cache=cache)[0]
    n = min(n_real, len(_data.load(dataset, split="test")), _train_size(dataset))
    reference = classifier_outputs(classifier, real_images(dataset, n, seed=seed + 1))[0]
    floor = sample_quality(classifier, real_images(dataset, n, seed=seed, split="train"), reference)
    return classifier, reference, floor
