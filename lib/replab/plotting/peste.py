"""Figures of the Peşte et al. (2017) pages: spectra, active counts, bounds, probe curves, geodesics, interpolations.

Every helper takes plain containers or pandas DataFrames (the records the pages build) and returns the axes.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from . import image_grid, style
from ._figure import subplots

__all__ = ["eigen_spectra", "active_counts", "likelihood_vs_alpha", "likelihood_sweep", "probe_curves",
           "geodesic_vs_line", "geodesic_half_planes", "interpolation_rows"]


def _axes_row(n: int, width: float = 3.2, height: float = 2.6, sharey: bool = True):
    import matplotlib.pyplot as plt

    _, axes = subplots(1, n, figsize=(width * n, height), sharey=sharey, squeeze=False)
    return list(axes[0])


def eigen_spectra(spectra: Mapping[int, Mapping[float, Sequence[float]]], threshold: float = 0.01, axes=None):
    """Fig. 1: PCA eigenvalues of the posterior means, one panel per latent size k, one line per α.

    ``spectra[k][alpha]`` is the eigenvalue vector (descending). The threshold ε is drawn as a dashed line.
    """
    import matplotlib.pyplot as plt

    style()
    ks = sorted(spectra)
    axes = axes if axes is not None else _axes_row(len(ks))
    for ax, k in zip(axes, ks):
        alphas = sorted(spectra[k])
        colours = plt.cm.viridis(np.linspace(0, 0.9, len(alphas)))
        for colour, alpha in zip(colours, alphas):
            ev = np.clip(np.asarray(spectra[k][alpha], dtype=float), 1e-8, None)
            ax.semilogy(np.arange(1, len(ev) + 1), ev, marker=".", color=colour, label=f"α = {alpha:g}")
        ax.axhline(threshold, color="k", ls="--", lw=0.8)
        ax.set_title(f"k = {k}")
        ax.set_xlabel("component")
    axes[0].set_ylabel("eigenvalue of Cov[μ(x)]")
    axes[-1].legend(fontsize=7)
    return axes


def _lines_by_k(ax, df, x: str, y: str, label: str = "k = {k}", ls: str = "-", marker: str = "o"):
    """Mean ± std over runs of ``y`` against ``x``, one line per latent size ``k``."""
    for i, (k, part) in enumerate(df.groupby("k")):
        agg = part.groupby(x)[y].agg(["mean", "std"]).reset_index()
        ax.errorbar(agg[x], agg["mean"], yerr=agg["std"].fillna(0), color=f"C{i}", ls=ls, marker=marker,
                    ms=4, capsize=2, label=label.format(k=k))


def active_counts(df, ax=None):
    """Fig. 2 (left): the number of active components against α, one line per k (mean ± std over runs).

    ``df`` has columns ``alpha``, ``k``, ``active``.
    """
    import matplotlib.pyplot as plt

    style()
    if ax is None:
        _, ax = subplots(figsize=(4, 3))
    _lines_by_k(ax, df, "alpha", "active")
    ax.set_xlabel("α")
    ax.set_ylabel("active components (eigenvalue > ε)")
    ax.legend()
    return ax


def likelihood_vs_alpha(df, ax=None):
    """Fig. 2 (right): the Rényi bound (dashed) and the importance-sampled log-likelihood (solid) against α.

    ``df`` has columns ``alpha``, ``k``, ``renyi_bound``, ``log_likelihood`` (one row per run and repeat); the
    error bars are the standard deviation over rows.
    """
    import matplotlib.pyplot as plt

    style()
    if ax is None:
        _, ax = subplots(figsize=(4.5, 3.2))
    _lines_by_k(ax, df, "alpha", "log_likelihood", label="log p(x), k = {k}")
    _lines_by_k(ax, df, "alpha", "renyi_bound", label="Rényi bound, k = {k}", ls="--", marker="s")
    ax.set_xlabel("α")
    ax.set_ylabel("nats per test image")
    ax.legend(fontsize=7)
    return ax


def likelihood_sweep(df):
    """Fig. 2 (right) as an interactive figure: the importance-sampled log-likelihood and the Rényi bound against
    α, one line per (quantity, k), the band spanning the rows (runs and repeats) of ``df`` (columns as
    :func:`likelihood_vs_alpha`)."""
    import pandas as pd

    from . import interactive

    parts = []
    for column, name in (("log_likelihood", "log p(x)"), ("renyi_bound", "Rényi bound")):
        g = df.groupby(["k", "alpha"])[column].agg(["mean", "min", "max"]).reset_index()
        parts.append(g.assign(series=[f"{name}, k = {k}" for k in g["k"]]))
    return interactive.sweep_frame(pd.concat(parts), x="alpha", group="series", x_label="α",
                                   y_label="nats per test image",
                                   title="Rényi bound and importance-sampled log-likelihood against α")


def probe_curves(df, baseline: float | None = None, kinds: Sequence[str] = ("means", "means+variances", "samples"),
                 axes=None):
    """Fig. 3: probe accuracy against training epoch, one panel per feature kind, one line per k.

    ``df`` has columns ``epoch``, ``k``, ``kind``, ``accuracy``; ``baseline`` (a linear classifier on pixels) is
    drawn as a dotted line.
    """
    style()
    axes = axes if axes is not None else _axes_row(len(kinds))
    for ax, kind in zip(axes, kinds):
        _lines_by_k(ax, df[df["kind"] == kind], "epoch", "accuracy", marker=".")
        if baseline is not None:
            ax.axhline(baseline, color="k", ls=":", lw=1, label="pixels")
        ax.set_title(kind)
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("test accuracy")
    axes[-1].legend(fontsize=7)
    return axes


def geodesic_vs_line(geodesic, line, dims: Sequence[int], legacy=None, axes=None):
    """Fig. 4: curves in the (μ, σ) half-plane of chosen latent dimensions.

    ``geodesic`` and ``line`` are (mu, sigma) pairs of arrays of shape (n_steps, d): the Fisher–Rao geodesic
    (solid) and the straight line in (μ, σ) (dotted) between the same two Gaussians; ``legacy``, when given, is
    the public code's semicircle (dashed, grey).
    """
    style()
    axes = axes if axes is not None else _axes_row(len(dims), width=2.6, height=2.4, sharey=False)
    for i, (ax, j) in enumerate(zip(axes, dims)):
        (gm, gs), (lm, ls_) = [(np.asarray(m)[:, j], np.asarray(s)[:, j]) for m, s in (geodesic, line)]
        ax.plot(gm, gs, color=f"C{i}", lw=1.5, label="geodesic")
        ax.plot(lm, ls_, color=f"C{i}", lw=1.2, ls=":", label="straight line")
        if legacy is not None:
            ax.plot(np.asarray(legacy[0])[:, j], np.asarray(legacy[1])[:, j], color="0.5", lw=1.0, ls="--",
                    label="public code's semicircle")
        ax.plot([gm[0], gm[-1]], [gs[0], gs[-1]], "ko", ms=3)
        ax.set_title(f"dimension {j}")
        ax.set_xlabel("μ")
    axes[0].set_ylabel("σ")
    axes[0].legend(fontsize=7)
    return axes


def geodesic_half_planes(mu1, sigma1, mu2, sigma2, n_dims: int = 3, n_points: int = 100, axes=None):
    """Fig. 4 between two diagonal Gaussians (each of shape (k,)): :func:`geodesic_vs_line` in the ``n_dims``
    latent dimensions where the means are farthest apart, with the geodesic, the straight line in (μ, σ) and the
    public code's semicircle sampled at ``n_points`` points."""
    import torch

    from ..geometry import fisher_rao_geodesic

    dims = torch.argsort((mu1 - mu2).abs(), descending=True)[:n_dims].tolist()
    t = torch.linspace(0, 1, n_points, dtype=torch.float64)
    geodesic = fisher_rao_geodesic(mu1, sigma1, mu2, sigma2, t)
    line = ((1 - t[:, None]) * mu1 + t[:, None] * mu2, (1 - t[:, None]) * sigma1 + t[:, None] * sigma2)
    legacy = fisher_rao_geodesic(mu1, sigma1, mu2, sigma2, t, legacy_semicircles=True)
    return geodesic_vs_line(geodesic, line, dims, legacy=legacy, axes=axes)


def interpolation_rows(rows: Mapping[str, object], highlight: Mapping[str, int] | None = None, axes=None):
    """Fig. 5: one row of decoded images per interpolation, labelled on the left.

    ``rows`` maps a label to images of shape (n_steps, 1, H, W) in [0, 1]; ``highlight`` maps a label to the
    column to frame in red (the transition image).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    style()
    labels = list(rows)
    if axes is None:
        n_steps = len(next(iter(rows.values())))
        _, axes = subplots(len(labels), 1, figsize=(0.75 * n_steps + 1.5, 0.8 * len(labels) + 0.2),
                               squeeze=False)
        axes = list(axes[:, 0])
    for ax, label in zip(axes, labels):
        images = rows[label]
        image_grid(images, ncols=len(images), ax=ax)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        if highlight and label in highlight:
            h, w = images.shape[-2:]
            col = highlight[label]
            ax.add_patch(Rectangle((col * (w + 1) + 0.5, 0.5), w, h, fill=False, ec="red", lw=1.5))
    return axes
