"""Figures of the Bonheme & Grześ pages: layer × layer similarity heatmaps on one shared colour scale (static and
interactive), per-layer similarity profiles, the similarity of each part of a VAE across training, the collapse
detector scatter, the decoder-retraining curves and rows of images with their reconstructions."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from . import style
from ._figure import subplots

__all__ = ["layer_heatmap", "heatmap_grid", "snapshot_heatmaps", "first_snapshot_heatmaps", "part_curves",
           "layer_profiles", "detector_scatter", "retraining_curves", "image_rows", "domain_reconstructions"]

VMIN, VMAX = 0.0, 1.0  # every similarity heatmap of these pages shares this colour scale


def layer_heatmap(table: pd.DataFrame, ax=None, title: str | None = None, xlabel: str | None = None,
                  ylabel: str | None = None, annotate: bool = False, cmap: str = "magma"):
    """One layer × layer similarity table as a heatmap labelled by layer name, colour scale [0, 1]."""
    import matplotlib.pyplot as plt

    style()
    if ax is None:
        _, ax = subplots(figsize=(4.2, 3.8))
    im = ax.imshow(table.to_numpy(dtype=float), vmin=VMIN, vmax=VMAX, cmap=cmap, interpolation="nearest")
    ax.set_xticks(range(table.shape[1]), list(table.columns), rotation=90, fontsize=6)
    ax.set_yticks(range(table.shape[0]), list(table.index), fontsize=6)
    if annotate:
        for i in range(table.shape[0]):
            for j in range(table.shape[1]):
                v = float(table.iat[i, j])
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=4,
                        color="black" if v > 0.6 else "white")
    if title:
        ax.set_title(title, fontsize=8)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    return im


def heatmap_grid(tables: Mapping[str, pd.DataFrame], ncols: int = 4, xlabel: str | None = None,
                 ylabel: str | None = None, suptitle: str | None = None, size: float = 2.9,
                 colorbar_label: str = "similarity"):
    """Several heatmaps side by side (titles are the keys) with one colour bar for all; returns the figure."""
    import matplotlib.pyplot as plt

    style()
    if not tables:
        raise ValueError("tables: nothing to plot")
    n = len(tables)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = subplots(nrows, ncols, figsize=(size * ncols + 0.8, size * nrows + 0.4), squeeze=False)
    im = None
    for k, (title, table) in enumerate(tables.items()):
        ax = axes[k // ncols][k % ncols]
        im = layer_heatmap(table, ax, title=title, xlabel=xlabel if k // ncols == nrows - 1 else None,
                           ylabel=ylabel if k % ncols == 0 else None)
        if k % ncols:  # the rows are the same layers across a row of panels: label them once
            ax.set_yticklabels([])
    for k in range(n, nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    fig.colorbar(im, ax=axes, shrink=0.8, label=colorbar_label)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def snapshot_heatmaps(tables: Mapping[str, Mapping[int, Mapping[str, pd.DataFrame]]], final_step: int,
                      metric: str = "min") -> list:
    """One :func:`heatmap_grid` per model of ``tables`` (``{model: {step: {metric: table}}}``): each snapshot
    against the trained model at ``final_step``; returns the figures."""
    return [heatmap_grid({f"step {step} vs {final_step}": t[metric] for step, t in sims.items()}, ncols=4,
                         xlabel="trained model", ylabel="snapshot", suptitle=f"{name}: min(CKA, Procrustes)")
            for name, sims in tables.items()]


def first_snapshot_heatmaps(tables: Mapping[str, Mapping[int, Mapping[str, pd.DataFrame]]], final_step: int,
                            metric: str = "min") -> list:
    """Each model's first snapshot against its trained model as an interactive heatmap (hover: the layer pair
    and the value)."""
    from . import interactive

    out = []
    for name, sims in tables.items():
        step = min(sims)
        t = sims[step][metric]
        out.append(interactive.heatmap(t.to_numpy(), list(t.index), list(t.columns), metric="min(CKA, Procrustes)",
                                       title=f"{name}: step {step} vs {final_step}",
                                       setting=f"{name}, snapshot at step {step}", row_label="snapshot",
                                       col_label="trained model"))
    return out


def part_curves(summaries: Mapping[str, pd.DataFrame], parts=("encoder", "decoder", "latent")):
    """One panel per model: the similarity of each part with the trained model against the snapshot step
    (``summaries[model]``: rows the steps, a column per part); returns the figure."""
    import matplotlib.pyplot as plt

    style()
    fig, axes = subplots(1, len(summaries), figsize=(3.2 * len(summaries), 2.8), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, (name, summary) in zip(axes, summaries.items()):
        for part in parts:
            ax.plot(summary.index, summary[part], marker="o", label=part)
        ax.set_title(name)
        ax.set_xlabel("snapshot step")
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("similarity with the trained model")
    axes[0].legend()
    return fig


def layer_profiles(profiles: Mapping[str, pd.Series], ax=None, title: str | None = None,
                   ylabel: str = "similarity with the same layer"):
    """Per-layer similarity (e.g. the diagonal of each heatmap) as one line per comparison; returns the axes."""
    import matplotlib.pyplot as plt

    style()
    if ax is None:
        _, ax = subplots(figsize=(6.5, 3.2))
    names = None
    for label, series in profiles.items():
        names = list(series.index) if names is None else names
        ax.plot(range(len(names)), series.reindex(names).to_numpy(dtype=float), marker="o", ms=3, label=label)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_ylim(VMIN, VMAX + 0.02)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=6, ncol=2)
    return ax


def detector_scatter(table: pd.DataFrame, x: str, ys: Mapping[str, str], label: str | None = None, ax=None):
    """Scatter of collapse detectors (columns ``ys``, legend labels the values) against ``x``; returns the axes."""
    import matplotlib.pyplot as plt

    style()
    if ax is None:
        _, ax = subplots(figsize=(4.5, 3.2))
    jitter = np.linspace(-0.15, 0.15, len(ys)) if len(ys) > 1 else [0.0]
    for dx, (col, name) in zip(jitter, ys.items()):
        ax.scatter(table[x] + dx, table[col], s=18, label=name)
    ax.set_xlabel(label or x)
    ax.set_ylabel("linear CKA")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    return ax


def retraining_curves(table: pd.DataFrame, x: str = "n_retrained", y: str = "reconstruction_loss",
                      by: str = "order", ax=None):
    """Reconstruction loss on the target against the number of decoder layers retrained, one line per order."""
    import matplotlib.pyplot as plt

    style()
    if ax is None:
        _, ax = subplots(figsize=(4.8, 3.2))
    for name, group in table.groupby(by, sort=False):
        group = group.sort_values(x)
        ax.plot(group[x], group[y], marker="o", label=str(name))
    ax.set_xlabel("decoder layers retrained")
    ax.set_ylabel("target reconstruction loss (nats / image)")
    ax.legend(fontsize=7)
    return ax


def image_rows(rows: Mapping[str, object], ncols: int = 8, width: float = 6.0, row_height: float = 0.9):
    """One row of images per entry of ``rows`` (label: a batch of images), labelled on the left; returns the
    figure."""
    import matplotlib.pyplot as plt

    from . import image_grid

    style()
    fig, axes = subplots(len(rows), 1, figsize=(width, row_height * len(rows)), squeeze=False)
    for ax, (title, images) in zip(axes[:, 0], rows.items()):
        image_grid(images, ncols=ncols, ax=ax)
        ax.set_ylabel(title, rotation=0, ha="right", fontsize=7)
    return fig


def domain_reconstructions(recons: Mapping[str, tuple]) -> list:
    """Per target dataset (``{target: (source, examples, reconstructions)}``), its examples above their
    reconstructions by the VAE trained on the source; returns the figures."""
    import matplotlib.pyplot as plt

    from . import image_grid

    style()
    figs = []
    for target, (source, shown, recon) in recons.items():
        n = len(shown)
        fig, axes = subplots(2, 1, figsize=(0.6 * n, 1.6))
        image_grid(shown, ncols=n, ax=axes[0], title=f"{target} examples")
        image_grid(recon, ncols=n, ax=axes[1], title=f"reconstructed by the VAE trained on {source}")
        figs.append(fig)
    return figs
