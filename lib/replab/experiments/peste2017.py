"""The experiments of Peşte, Malagò & Sârbu (2017), shared by the four pages of ``notebooks/peste2017``.

The pages train MLP VAEs (two hidden layers of 200 ReLU units, Bernoulli decoder) with the Rényi bound of
Li & Turner for several α, latent sizes k and runs (seeds), through :mod:`replab.train` (:class:`Models`, cached by
configuration, so the four pages share them), and then measure, one function per page section: the spectrum of
Cov[μ(x)], the active count and how the principal directions align with the axes (Sec. 2.1,
:func:`spectra_and_counts`); the Rényi bound and the log-likelihood per test digit (Fig. 2, :func:`likelihoods`);
linear probes at training snapshots (Sec. 2.2, in :mod:`.peste2017_probes`); interpolations along Fisher–Rao geodesics (Sec. 2.3, :func:`geodesic_pairs`, with the path
measurements of :mod:`replab.geometry`). The claims' effects and intervals are in :mod:`.peste2017_claims`. The
paper's unstated settings are in ``profiles/peste2017.toml``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from .. import data as _data
from .. import geometry, models as _models, profiles
from ..objectives import importance_log_likelihood, log_importance_weights, renyi_bound
from ..runtime import get_device

__all__ = ["Models", "ActiveComponents", "Likelihood", "LinearSeparability", "Geodesics", "train_config",
           "train_models", "encode", "likelihood_estimates", "spectra_and_counts", "likelihoods", "geodesic_pairs"]

_PAGES = ("peste2017/01-active-components", "peste2017/02-likelihood-vs-alpha", "peste2017/03-linear-separability",
          "peste2017/04-geodesics")


@profiles.experiment("peste2017.models", pages=_PAGES)
@dataclass(frozen=True)
class Models:
    """The grid of MLP VAEs every page shares, trained with the Rényi bound (one cached model per α, k, run)."""

    dataset: str = profiles.size("training digits: mnist10k (shipped) or mnist (the full set, when given)",
                                  dataset="one")
    n_train: int = profiles.size("training digits used (all of the split when larger)", unit="images")
    alphas: tuple[float, ...] = profiles.size("α values of the Rényi bound")
    latent_dims: tuple[int, ...] = profiles.size("latent sizes k")
    n_runs: int = profiles.size("runs (seeds) per (α, k)")
    n_epochs: int = profiles.size("training epochs of every model", unit="epochs")
    snapshot_epochs: tuple[int, ...] = profiles.size("epochs whose weights are kept (Fig. 3)", unit="epochs")
    n_samples: int = profiles.size("samples K of the training bound")
    batch_size: int = profiles.size("training batch size", unit="images")
    lr: float = profiles.size("Adam learning rate")


@profiles.experiment("peste2017.active-components", pages=_PAGES[:1])
@dataclass(frozen=True)
class ActiveComponents:
    """Sec. 2.1: the spectrum of Cov[μ(x)] over the test set and the active count."""

    n_test: int = profiles.size("test digits whose posterior means are analysed", unit="images")
    threshold: float = profiles.size("ε: an eigenvalue above it marks an active component")


@profiles.experiment("peste2017.likelihood", pages=_PAGES[1:2])
@dataclass(frozen=True)
class Likelihood:
    """Fig. 2 (right): the Rényi bound and the importance-sampled log-likelihood of every model."""

    n_test: int = profiles.size("test digits the estimates average over", unit="images")
    n_is_samples: int = profiles.size("importance samples of log p(x) (2,000 in the paper)")
    n_bound_samples: int = profiles.size("samples of the Rényi bound (10 in the paper)")
    n_repeats: int = profiles.size("repeated estimates with fresh samples")


@profiles.experiment("peste2017.linear-separability", pages=_PAGES[2:3])
@dataclass(frozen=True)
class LinearSeparability:
    """Sec. 2.2, Fig. 3: logistic-regression probes at the training snapshots."""

    n_probe_train: int = profiles.size("training digits the probes are fitted on", unit="images")
    n_test: int = profiles.size("test digits the probes are scored on", unit="images")
    max_iter: int = profiles.size("lbfgs iteration cap (convergence is checked)")
    legacy_steps: int = profiles.size("SGD steps of the public code's fixed-step probe (compared only)",
                                      unit="steps")


@profiles.experiment("peste2017.geodesics", pages=_PAGES[3:])
@dataclass(frozen=True)
class Geodesics:
    """Sec. 2.3, Figs. 4 and 5: interpolations between pairs of test digits and path lengths."""

    n_pairs: int = profiles.size("pairs of test digits (different classes) measured")
    n_steps: int = profiles.size("images per interpolation")
    geo_k: int = profiles.size("latent size k of the model whose posteriors are joined")


# ---------------------------------------------------------------------------------------------- models and data


def train_config(models: Models, alpha: float, latent_dim: int, *, run: int = 0, seed: int = 0):
    """The :class:`~replab.train.TrainConfig` of one MLP VAE of ``models`` trained with the Rényi bound at
    ``alpha``; run ``run`` is seeded with ``seed + run``. Every page builds its configurations here, so the same
    (α, k, run) is the same cached model on every page."""
    from ..train import TrainConfig

    n_available = len(_data.load(models.dataset, split="train"))
    n = None if models.n_train >= n_available else int(models.n_train)
    per_epoch = (n or n_available) // models.batch_size
    epochs = [e for e in models.snapshot_epochs if e <= models.n_epochs]
    return TrainConfig(model=_models.MLPConfig(latent_dim=int(latent_dim)), objective="renyi",
                       objective_params={"alpha": float(alpha), "n_samples": int(models.n_samples)},
                       dataset=models.dataset, split="train", n=n, batch_size=int(models.batch_size),
                       steps=int(models.n_epochs) * per_epoch, lr=float(models.lr), seed=int(seed + run),
                       snapshot_steps=tuple(int(e) * per_epoch for e in epochs))


def train_models(models: Models, alphas: Sequence[float] | None = None, latent_dims: Sequence[int] | None = None,
                 seed: int = 0) -> dict:
    """Train (or load from the cache) every (α, k, run) of ``models`` (or the given subsets of α and k):
    ``{(alpha, k, run): TrainedRun}``, each run's snapshots keyed by update step."""
    from ..train.groups import train_many

    alphas = models.alphas if alphas is None else alphas
    latent_dims = models.latent_dims if latent_dims is None else latent_dims
    grid = [(float(a), int(k), r) for k in latent_dims for a in alphas for r in range(int(models.n_runs))]
    # the α and runs of one latent size train together as one stacked model
    runs = train_many([train_config(models, a, k, run=r, seed=seed) for a, k, r in grid])
    return dict(zip(grid, runs))


def _digits(dataset: str, n_train: int | None = None):
    """``(x_train, y_train, x_test, y_test)``: images as float32 in [0, 1] of shape (N, 1, 28, 28) with their
    labels, the first ``n_train`` training images (all when ``None`` or larger than the split)."""
    train, test = _data.load(dataset, split="train"), _data.load(dataset, split="test")
    n = len(train) if n_train is None else min(int(n_train), len(train))
    return (train.images[:n].float() / 255.0, train.labels[:n], test.images.float() / 255.0, test.labels)


def encode(model, x: torch.Tensor, batch_size: int = 1000, device="auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and standard deviations of q(z | x), each (N, k), float64 on the CPU (the model is put on
    ``device`` in eval mode; :func:`replab.models.encode` does the batches)."""
    model = model.to(get_device(device)).eval()
    mu, logvar = _models.encode(model, x, batch_size)
    return mu, torch.exp(0.5 * logvar)


def _pairs(labels: Sequence[int], n_pairs: int, seed: int = 0) -> list[tuple[int, int]]:
    """``n_pairs`` pairs of indices of examples with different labels, drawn reproducibly."""
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    pairs = []
    while len(pairs) < n_pairs:
        i, j = rng.choice(len(y), 2, replace=False)
        if y[i] != y[j]:
            pairs.append((int(i), int(j)))
    return pairs


# ---------------------------------------------------------------------------------------------- 01: spectra


def _rotation(k: int, seed: int) -> torch.Tensor:
    """A random k × k rotation, uniform over the orthogonal group (QR of a Gaussian matrix, signs fixed)."""
    q, r = torch.linalg.qr(torch.randn(k, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


@dataclass(frozen=True)
class Spectra:
    counts: pd.DataFrame   # one row per (α, k, run): active (PCA count), active_axes, sigma2_inactive, alignment, ...
    mean_spectra: dict     # k -> α -> eigenvalues of Cov[μ(x)], descending, averaged over runs (Fig. 1)


def spectra_and_counts(models: Models, sizes: ActiveComponents, *, seed: int = 0) -> Spectra:
    """Every model's spectrum of Cov[μ(x)] over the first ``n_test`` test digits, its active count (PCA and per
    axis), the mean posterior variance of its inactive axes (those whose mean does not vary), and the alignment
    of its active principal directions with the coordinate axes (:func:`replab.geometry.axis_alignment`) beside
    the same for its means turned by a random rotation (``alignment_rotated``: what an encoder without preferred
    axes would give; one rotation per model, seeded)."""
    runs = train_models(models, seed=seed)
    x_test = _digits(models.dataset)[2][:sizes.n_test]
    rows, spectra = [], {}
    for n, ((alpha, k, run_id), run) in enumerate(runs.items()):
        mu, sigma = encode(run.model, x_test)
        ev = geometry.posterior_mean_spectrum(mu)
        spectra.setdefault(k, {}).setdefault(alpha, []).append(ev.numpy())
        inactive = mu.var(0, unbiased=False) <= sizes.threshold
        rows.append({"alpha": alpha, "k": k, "run": run_id,
                     "active": geometry.count_active(ev, sizes.threshold),
                     "active_axes": geometry.active_units(mu, sizes.threshold),
                     "sigma2_inactive": float((sigma[:, inactive] ** 2).mean()) if inactive.any() else np.nan,
                     "alignment": geometry.axis_alignment(mu, sizes.threshold),
                     "alignment_rotated": geometry.axis_alignment(mu @ _rotation(k, seed + n), sizes.threshold)})
    mean_spectra = {k: {a: np.mean(v, 0) for a, v in by_alpha.items()} for k, by_alpha in spectra.items()}
    return Spectra(pd.DataFrame(rows), mean_spectra)


# ---------------------------------------------------------------------------------------------- 02: likelihood


@torch.no_grad()
def likelihood_estimates(model, x: torch.Tensor, alpha: float, n_is_samples: int = 2000, n_bound_samples: int = 10,
                         *, n_repeats: int = 3, seed: int = 0, chunk: int = 100, batch_size: int = 100,
                         device="auto") -> list[dict]:
    """Per repeat: the K-sample Rényi bound at the model's α (K = ``n_bound_samples``, 10 in Fig. 2) and the
    importance-sampled log-likelihood (``n_is_samples`` samples, 2,000 in the paper), averaged over ``x``
    (``renyi_bound``, ``log_likelihood``) and per example (``renyi_bound_per_example``,
    ``log_likelihood_per_example``: float64 arrays of shape (N,)). Each repeat draws fresh samples (seeded by
    ``seed + repeat``), so the spread over repeats is the estimator's."""
    dev = get_device(device)
    model = model.to(dev).eval()
    records = []
    for r in range(n_repeats):
        gen = torch.Generator(device=dev).manual_seed(seed + r)
        bounds, lls = [], []
        for start in range(0, x.shape[0], batch_size):
            xb = x[start:start + batch_size].to(dev)
            bounds.append(renyi_bound(log_importance_weights(model, xb, n_bound_samples, gen), alpha).cpu())
            lls.append(importance_log_likelihood(model, xb, n_is_samples, chunk=chunk, generator=gen).cpu())
        bound, ll = torch.cat(bounds).double().numpy(), torch.cat(lls).double().numpy()
        records.append({"repeat": r, "renyi_bound": float(bound.mean()), "log_likelihood": float(ll.mean()),
                        "renyi_bound_per_example": bound, "log_likelihood_per_example": ll})
    return records


@dataclass(frozen=True)
class Likelihoods:
    estimates: pd.DataFrame  # one row per (α, k, run, repeat): renyi_bound, log_likelihood, gap (nats per image)
    table: pd.DataFrame      # per (k, α): means of the bound, log p(x) and gap, and the spread over repeats
    alphas: tuple            # the α of the axes below, ascending
    latent_dims: tuple       # the k of the axes below, ascending
    renyi_bound: np.ndarray     # per test digit: (k, α, run, repeat, digit), nats
    log_likelihood: np.ndarray  # the same for the importance-sampled log p(x)


def likelihoods(models: Models, sizes: Likelihood, *, seed: int = 0) -> Likelihoods:
    """The Rényi bound (at each model's α) and the importance-sampled log p(x) of every model, repeated, averaged
    over the test digits and per digit."""
    runs = train_models(models, seed=seed)
    x_test = _digits(models.dataset)[2][:sizes.n_test]
    alphas, ks = sorted({a for a, _, _ in runs}), sorted({k for _, k, _ in runs})
    shape = (len(ks), len(alphas), int(models.n_runs), int(sizes.n_repeats), len(x_test))
    per_example = {"renyi_bound": np.zeros(shape), "log_likelihood": np.zeros(shape)}
    rows = []
    for (alpha, k, run_id), run in runs.items():
        for r in likelihood_estimates(run.model, x_test, alpha, sizes.n_is_samples, sizes.n_bound_samples,
                                      n_repeats=sizes.n_repeats, seed=seed):
            for name, values in per_example.items():
                values[ks.index(k), alphas.index(alpha), run_id, r["repeat"]] = r.pop(f"{name}_per_example")
            rows.append({"alpha": alpha, "k": k, "run": run_id, **r})
    estimates = pd.DataFrame(rows)
    estimates["gap"] = estimates["log_likelihood"] - estimates["renyi_bound"]
    table = estimates.groupby(["k", "alpha"]).agg(
        renyi_bound=("renyi_bound", "mean"), log_likelihood=("log_likelihood", "mean"), gap=("gap", "mean"))
    # the estimator's spread: standard deviation over repeats of one model, averaged over models
    spread = estimates.groupby(["k", "alpha", "run"])["log_likelihood"].std().groupby(["k", "alpha"]).mean()
    table["ll_std_over_repeats"] = spread
    return Likelihoods(estimates, table, tuple(alphas), tuple(ks), **per_example)


# ---------------------------------------------------------------------------------------------- 04: geodesics


@dataclass(frozen=True)
class GeodesicPairs:
    paths: pd.DataFrame   # one row per (run, pair): sharpness, variance rise, sample spread, path lengths, ratios
    first: dict           # the five interpolations of Fig. 5 for the first pair, run 0 (label -> images)
    first_ends: tuple     # (μ₁, σ₁, μ₂, σ₂) of the first pair's posteriors, run 0, float64 of shape (k,) (Fig. 4)


def _pair_rows(model, x_test, y_test, pairs, *, n_steps: int, seed: int) -> tuple[list[dict], dict, tuple]:
    used = sorted({i for p in pairs for i in p})
    mu, sigma = encode(model, x_test[used])
    index = {j: n for n, j in enumerate(used)}
    rows, first = [], None
    for p, (i, j) in enumerate(pairs):
        ends = (mu[index[i]], sigma[index[i]], mu[index[j]], sigma[index[j]])
        interp = geometry.interpolation_rows(model, x_test[i], x_test[j], n_steps=n_steps, seed=seed + p)
        first = (interp, ends) if first is None else first
        spread = geometry.sampling_variability(model, *ends, n_steps=n_steps, seed=seed + p)
        rising, separated = geometry.variance_rise_counts(*ends)
        rows.append({"pair": p, "digits": f"{int(y_test[i])}→{int(y_test[j])}",
                     "sharpness_means": geometry.transition_sharpness(interp["means"]),
                     "sharpness_geodesic": geometry.transition_sharpness(interp["geodesic, means"]),
                     "variance_rise": rising / separated if separated else np.nan, "dims_rising": rising,
                     "dims_separated": separated,
                     "sample_spread_geodesic": spread["geodesic"], "sample_spread_line": spread["line"],
                     **{name: float(v) for name, v in geometry.path_summary(*ends).items()}})
    return rows, *first


def geodesic_pairs(models: Models, sizes: Geodesics, *, alpha: float = 1.0, seed: int = 0) -> GeodesicPairs:
    """Every run of the model at (``alpha``, ``geo_k``) and the same ``n_pairs`` pairs of test digits of different
    classes: per run and pair, the interpolations of Fig. 5 (seeded ``seed + pair``) and their sharpness, the rise
    of σ along the geodesic (the share and the counts of separated dimensions whose σ rises), the spread of decoded
    samples along the geodesic and the line, and the lengths of Fig. 4."""
    k = sizes.geo_k
    runs = train_models(models, alphas=[alpha], latent_dims=[k], seed=seed)
    _, _, x_test, y_test = _digits(models.dataset)
    pairs = _pairs(y_test, sizes.n_pairs, seed=seed)
    rows, first = [], None
    for (_, _, run_id), run in sorted(runs.items()):
        measured, interp, ends = _pair_rows(run.model, x_test, y_test, pairs, n_steps=sizes.n_steps, seed=seed)
        rows += [{"run": run_id, **r} for r in measured]
        first = (interp, ends) if first is None else first
    paths = pd.DataFrame(rows)
    paths["line_over_geodesic"] = paths["fisher_rao_length_of_line"] / paths["fisher_rao_distance"]
    paths["legacy_over_geodesic"] = paths["fisher_rao_length_of_legacy_semicircles"] / paths["fisher_rao_distance"]
    return GeodesicPairs(paths, *first)
