"""The experiments of Peşte, Malagò & Sârbu (2017), shared by the four pages of ``notebooks/peste2017``.

The pages train MLP VAEs (two hidden layers of 200 ReLU units, Bernoulli decoder) with the Rényi bound of
Li & Turner for several α and latent sizes k, once, through :mod:`replab.train` (cached by configuration, so the
four pages share the models), and then measure:

- the spectrum of the covariance of the posterior means and the active count (Sec. 2.1, Figs. 1 and 2 left);
- the Rényi bound and the importance-sampled log-likelihood (Fig. 2 right);
- linear probes on means, means and variances, and samples at training snapshots (Sec. 2.2, Fig. 3);
- interpolations between test digits, straight and along the Fisher–Rao geodesic (Sec. 2.3, Figs. 4 and 5).

The paper does not state its α grid, its learning rate or its batch size; the values used are in
``profiles/peste2017.toml`` and named on the pages.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .. import data as _data
from ..geometry import (euclidean_path_length, fisher_rao_distance, fisher_rao_geodesic, path_length)
from ..runtime import get_device

__all__ = ["train_config", "train_models", "steps_per_epoch", "load_digits", "encode", "likelihood_estimates",
           "probe_snapshots", "pixel_baseline", "interpolation_rows", "transition_sharpness", "largest_step",
           "sampling_variability", "path_summary", "variance_rise", "pair_indices"]


def _dataset_size(dataset: str, split: str = "train") -> int:
    return len(_data.load(dataset, split=split))


def train_config(alpha: float, latent_dim: int, sizes, run: int = 0, seed: int = 0):
    """The :class:`~replab.train.TrainConfig` of one MLP VAE trained with the Rényi bound at ``alpha``.

    ``sizes`` are the resolved ``peste2017.models`` sizes (dataset, n_train, n_epochs, snapshot_epochs, n_samples,
    batch_size, lr); run ``run`` is seeded with ``seed + run``. Every page builds its configurations here, so the
    same (α, k, run) is the same cached model on every page.
    """
    from ..models import MLPConfig
    from ..train import TrainConfig

    n_available = _dataset_size(sizes["dataset"])
    n = None if sizes["n_train"] >= n_available else int(sizes["n_train"])
    per_epoch = (n or n_available) // sizes["batch_size"]
    epochs = [e for e in sizes["snapshot_epochs"] if e <= sizes["n_epochs"]]
    return TrainConfig(model=MLPConfig(latent_dim=int(latent_dim)), objective="renyi",
                       objective_params={"alpha": float(alpha), "n_samples": int(sizes["n_samples"])},
                       dataset=sizes["dataset"], split="train", n=n, batch_size=int(sizes["batch_size"]),
                       steps=int(sizes["n_epochs"]) * per_epoch, lr=float(sizes["lr"]), seed=int(seed + run),
                       snapshot_steps=tuple(int(e) * per_epoch for e in epochs))


def train_models(sizes, alphas: Sequence[float] | None = None, latent_dims: Sequence[int] | None = None,
                 seed: int = 0) -> dict:
    """Train (or load from the cache) every (α, k, run) of ``sizes`` (or the given subsets of α and k).

    Returns ``{(alpha, k, run): TrainedRun}``; a run's snapshots are keyed by update step, and
    ``steps_per_epoch(run)`` converts them to epochs.
    """
    from ..train.groups import train_many

    alphas = sizes["alphas"] if alphas is None else alphas
    latent_dims = sizes["latent_dims"] if latent_dims is None else latent_dims
    grid = [(float(a), int(k), r) for k in latent_dims for a in alphas for r in range(int(sizes["n_runs"]))]
    # the α and runs of one latent size train together as one stacked model
    runs = train_many([train_config(a, k, sizes, run=r, seed=seed) for a, k, r in grid])
    return dict(zip(grid, runs))


def steps_per_epoch(run) -> int:
    """Updates per epoch of a trained run (to read its snapshot steps as epochs)."""
    cfg = run.config
    return (cfg.n or _dataset_size(cfg.dataset, cfg.split)) // cfg.batch_size


def load_digits(dataset: str = "mnist10k", n_train: int | None = None, root=None):
    """Training and test images as float32 in [0, 1] of shape (N, 1, 28, 28), with their labels.

    ``n_train`` keeps the first ``n_train`` training images (all when ``None`` or larger than the split).
    Returns ``(x_train, y_train, x_test, y_test)``.
    """
    train, test = _data.load(dataset, split="train", root=root), _data.load(dataset, split="test", root=root)
    if n_train is not None and n_train < 1:
        raise ValueError(f"n_train must be a positive integer or None, got {n_train!r}")
    n = len(train) if n_train is None else min(int(n_train), len(train))
    return (train.images[:n].float() / 255.0, train.labels[:n], test.images.float() / 255.0, test.labels)


@torch.no_grad()
def encode(model, x: torch.Tensor, batch_size: int = 1000, device="auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and standard deviations of q(z | x), each (N, k), float64 on the CPU."""
    dev = get_device(device)
    model = model.to(dev).eval()
    mus, sigmas = [], []
    for start in range(0, x.shape[0], batch_size):
        mu, logvar = model.encode(x[start:start + batch_size].to(dev))
        mus.append(mu.double().cpu())
        sigmas.append(torch.exp(0.5 * logvar.double()).cpu())
    return torch.cat(mus), torch.cat(sigmas)


@torch.no_grad()
def likelihood_estimates(model, x: torch.Tensor, alpha: float, n_is_samples: int = 2000, n_bound_samples: int = 10,
                         n_repeats: int = 3, seed: int = 0, chunk: int = 100, batch_size: int = 100,
                         device="auto") -> list[dict]:
    """Per repeat: the K-sample Rényi bound at the model's α (K = ``n_bound_samples``, 10 in Fig. 2) and the
    importance-sampled log-likelihood (``n_is_samples`` samples, 2,000 in the paper), averaged over ``x``.

    Each repeat draws fresh samples (seeded by ``seed + repeat``), so the spread over repeats is the estimator's.
    """
    from ..objectives import importance_log_likelihood, log_importance_weights, renyi_bound

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
        records.append({"repeat": r, "renyi_bound": torch.cat(bounds).double().mean().item(),
                        "log_likelihood": torch.cat(lls).double().mean().item()})
    return records


@torch.no_grad()
def interpolation_rows(model, x1: torch.Tensor, x2: torch.Tensor, n_steps: int = 10, seed: int = 0,
                       device="auto") -> dict[str, torch.Tensor]:
    """The five interpolations of Fig. 5 between two images ``x1``, ``x2`` of shape (1, H, W).

    Rows, each (n_steps, 1, H, W) in [0, 1]:
    ``"pixels"`` the straight line in input space; ``"means"`` decoded straight line between μ₁ and μ₂;
    ``"samples"`` decoded straight line between z₁ ~ q(z|x₁) and z₂ ~ q(z|x₂); ``"geodesic, sampled"`` one
    z ~ N(μ(t), σ(t)²) per point of the Fisher–Rao geodesic; ``"geodesic, means"`` decoded μ(t) of the geodesic.
    Decoded images are the Bernoulli means (sigmoid of the logits).
    """
    if n_steps < 2:
        raise ValueError(f"n_steps must be at least 2, got {n_steps!r}")
    dev = get_device(device)
    model = model.to(dev).eval()
    gen = torch.Generator(device=dev).manual_seed(seed)
    t = torch.linspace(0, 1, n_steps, device=dev)
    tc = t[:, None]
    x = torch.stack([x1, x2]).to(dev)
    mu, logvar = model.encode(x)
    sigma = torch.exp(0.5 * logvar)
    z = mu + sigma * torch.randn(mu.shape, generator=gen, device=dev)
    g_mu, g_sigma = fisher_rao_geodesic(mu[0].double(), sigma[0].double(), mu[1].double(), sigma[1].double(),
                                        t.double())
    g_mu, g_sigma = g_mu.to(mu.dtype), g_sigma.to(mu.dtype)
    g_z = g_mu + g_sigma * torch.randn(g_mu.shape, generator=gen, device=dev)
    decode = lambda codes: torch.sigmoid(model.decode(codes)).cpu()  # noqa: E731
    t_img = t.reshape(-1, 1, 1, 1)
    return {
        "pixels": ((1 - t_img) * x[0] + t_img * x[1]).cpu(),
        "means": decode((1 - tc) * mu[0] + tc * mu[1]),
        "samples": decode((1 - tc) * z[0] + tc * z[1]),
        "geodesic, sampled": decode(g_z),
        "geodesic, means": decode(g_mu),
    }


def probe_snapshots(run, x_train, y_train, x_test, y_test, seed: int = 0, **probe_kwargs) -> list[dict]:
    """Linear-probe accuracy (means, means and variances, samples) at every snapshot of a trained run (Fig. 3).

    Records carry ``epoch``, ``step`` and ``k`` besides the fields of :func:`replab.probes.evaluate_snapshots`.
    """
    from ..probes import evaluate_snapshots

    per_epoch = steps_per_epoch(run)
    k = run.config.model.latent_dim

    def snapshots():
        for step in sorted(run.snapshots):
            model = run.model_at(step)
            mu_tr, s_tr = encode(model, x_train)
            mu_te, s_te = encode(model, x_test)
            yield {"epoch": step / per_epoch, "step": step, "k": k, "mu_train": mu_tr, "sigma_train": s_tr,
                   "mu_test": mu_te, "sigma_test": s_te}

    return evaluate_snapshots(snapshots(), y_train, y_test, seed=seed, **probe_kwargs)


def pixel_baseline(dataset: str, n_train: int | None, n_test: int | None, max_iter: int = 5000) -> dict:
    """The same logistic-regression probe on raw pixels, cached in the artifact cache (Sec. 2.2's baseline)."""
    from ..cache import ArtifactCache
    from ..probes import probe_accuracy

    def compute():
        x_tr, y_tr, x_te, y_te = load_digits(dataset, n_train)
        x_te, y_te = x_te[:n_test], y_te[:n_test]
        return probe_accuracy(x_tr.reshape(len(x_tr), -1), y_tr, x_te.reshape(len(x_te), -1), y_te,
                              max_iter=max_iter)

    config = {"probe": "pixels", "dataset": dataset, "n_train": n_train, "n_test": n_test, "max_iter": max_iter}
    return ArtifactCache().get_or_compute("peste2017-probe", config, compute)


def transition_sharpness(images: torch.Tensor) -> float:
    """The share of a path's total pixel change made by its largest single step, in (0, 1].

    For images (n_steps, ...) along a path, the step sizes are ‖x_{i+1} − x_i‖; a gradual morph spreads the
    change evenly (share ≈ 1/(n_steps − 1)), a sharp transition concentrates it in one step (share → 1).
    """
    flat = torch.as_tensor(images).double().reshape(images.shape[0], -1)
    steps = torch.linalg.vector_norm(flat[1:] - flat[:-1], dim=1)
    total = steps.sum()
    if total == 0:
        raise ValueError("images: the path does not change; sharpness is undefined")
    return float(steps.max() / total)


def largest_step(images: torch.Tensor) -> int:
    """Index of the image that ends the largest step of a path (the transition image, framed in Fig. 5)."""
    flat = torch.as_tensor(images).double().reshape(images.shape[0], -1)
    return int(torch.linalg.vector_norm(flat[1:] - flat[:-1], dim=1).argmax()) + 1


@torch.no_grad()
def sampling_variability(model, mu1, sigma1, mu2, sigma2, n_steps: int = 10, n_draws: int = 8, seed: int = 0,
                         device="auto") -> dict:
    """How much decoded samples vary around the decoded means along two paths between the same Gaussians.

    For the Fisher–Rao geodesic and for the straight line in (μ, σ), the mean pixel distance
    ‖decode(μ(t) + σ(t)ε) − decode(μ(t))‖ over t and ``n_draws`` draws of ε (the same draws on both paths).
    Returns ``{"geodesic": float, "line": float}``.
    """
    dev = get_device(device)
    model = model.to(dev).eval()
    args = [torch.as_tensor(a).double() for a in (mu1, sigma1, mu2, sigma2)]
    t = torch.linspace(0, 1, n_steps, dtype=torch.float64)
    tc = t[:, None]
    paths = {"geodesic": fisher_rao_geodesic(*args, t),
             "line": ((1 - tc) * args[0] + tc * args[2], (1 - tc) * args[1] + tc * args[3])}
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn((n_draws, n_steps, args[0].shape[-1]), generator=gen, dtype=torch.float64)
    out = {}
    for name, (m, s) in paths.items():
        dtype = next(model.parameters()).dtype
        centre = torch.sigmoid(model.decode(m.to(dev, dtype))).flatten(1)
        draws = torch.sigmoid(model.decode((m + s * eps).to(dev, dtype))).flatten(2)
        out[name] = float(torch.linalg.vector_norm(draws - centre, dim=-1).mean())
    return out


def path_summary(mu1, sigma1, mu2, sigma2, n_steps: int = 200) -> dict:
    """Lengths between two diagonal Gaussians (Fig. 4): the Fisher–Rao distance (the geodesic's length), the
    Fisher–Rao lengths of the straight line in (μ, σ) and of the public code's semicircles
    (``fisher_rao_geodesic(..., legacy_semicircles=True)``), and the Euclidean distance of the means.

    Inputs of shape ``[..., d]``; outputs are tensors of shape ``[...]`` (float64).
    """
    args = [torch.as_tensor(a).double() for a in (mu1, sigma1, mu2, sigma2)]
    s = torch.linspace(0, 1, n_steps, dtype=torch.float64)
    t = s.reshape((-1,) + (1,) * args[0].ndim)
    line_mu = (1 - t) * args[0] + t * args[2]
    line_sigma = (1 - t) * args[1] + t * args[3]
    return {"fisher_rao_distance": fisher_rao_distance(*args),
            "fisher_rao_length_of_line": path_length(line_mu, line_sigma),
            "fisher_rao_length_of_legacy_semicircles": path_length(
                *fisher_rao_geodesic(*args, s, legacy_semicircles=True)),
            "euclidean_distance_of_means": euclidean_path_length(torch.stack([args[0], args[2]]))}


def variance_rise(mu1, sigma1, mu2, sigma2, n_steps: int = 101, min_separation: float = 1.0) -> float:
    """The share of latent dimensions whose σ along the geodesic rises above both endpoints' σ (Fig. 4).

    Only dimensions whose means are at least ``min_separation`` endpoint-σ apart are counted (the rise is
    negligible for nearby means); returns NaN when there is none. Along the straight line σ never rises.
    """
    args = [torch.as_tensor(a).double() for a in (mu1, sigma1, mu2, sigma2)]
    _, g_sigma = fisher_rao_geodesic(*args, torch.linspace(0, 1, n_steps, dtype=torch.float64))
    separated = (args[0] - args[2]).abs() >= min_separation * torch.maximum(args[1], args[3])
    if not separated.any():
        return math.nan
    rises = g_sigma.amax(0) > torch.maximum(args[1], args[3]) * (1 + 1e-9)
    return float(rises[separated].double().mean())


def pair_indices(labels: Sequence[int], n_pairs: int, seed: int = 0) -> list[tuple[int, int]]:
    """``n_pairs`` pairs of indices of examples with different labels, drawn reproducibly."""
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    pairs = []
    while len(pairs) < n_pairs:
        i, j = rng.choice(len(y), 2, replace=False)
        if y[i] != y[j]:
            pairs.append((int(i), int(j)))
    return pairs
