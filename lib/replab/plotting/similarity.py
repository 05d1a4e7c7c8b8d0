"""Figures of the similarity pages: metric-versus-examples panels, small-component sweeps, layer heatmaps.

Every helper takes the tables that :mod:`replab.similarity` returns (long pandas DataFrames, or the labelled
layer × layer table of :func:`replab.similarity.cka_matrix`) and returns the axes.
"""
from __future__ import annotations

from typing import Sequence

from . import style
from ._figure import subplots

__all__ = ["similarity_vs_examples", "small_components", "similarity_heatmap"]

_STYLES = {"CKA": dict(color="C0", ls="-"), "Procrustes": dict(color="C3", ls="--")}


def similarity_vs_examples(df, fractions: Sequence[float] | None = None, axes=None):
    """Bonheme & Grześ (2023), Fig. 1: one panel per shared fraction, similarity against the number of examples.

    ``df`` has columns ``n_examples``, ``shared``, ``seed``, ``metric``, ``similarity``; the line is the mean over
    seeds and the band the minimum and maximum. The shared fraction is drawn as a dotted line.
    """
    import matplotlib.pyplot as plt

    style()
    fractions = list(fractions) if fractions is not None else sorted(df["shared"].unique(), reverse=True)
    if axes is None:
        _, axes = subplots(1, len(fractions), figsize=(3.2 * len(fractions), 2.7), sharey=True, squeeze=False)
        axes = list(axes[0])
    for ax, frac in zip(axes, fractions):
        part = df[df["shared"] == frac]
        for metric, sub in part.groupby("metric"):
            stats = sub.groupby("n_examples")["similarity"].agg(["mean", "min", "max"])
            ax.plot(stats.index, stats["mean"], label=metric, **_STYLES.get(metric, {}))
            ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.2,
                            color=_STYLES.get(metric, {}).get("color"))
        ax.axhline(frac, color="0.5", ls=":", lw=1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("number of examples")
        ax.set_title(f"{int(round(100 * frac))}% shared features")
    axes[0].set_ylabel("similarity")
    axes[0].legend()
    return axes


def small_components(df, closed_form=None, ax=None):
    """Similarity against the fraction of (smallest) principal components removed (Ding et al. 2021).

    ``closed_form`` is an optional DataFrame with columns ``removed``, ``metric``, ``similarity`` drawn as dots.
    """
    import matplotlib.pyplot as plt

    style()
    if ax is None:
        _, ax = subplots(figsize=(3.6, 2.7))
    for metric, sub in df.groupby("metric"):
        stats = sub.groupby("removed")["similarity"].mean()
        ax.plot(100 * stats.index, stats.values, marker="o", ms=3, label=metric, **_STYLES.get(metric, {}))
    if closed_form is not None:
        for metric, sub in closed_form.groupby("metric"):
            ax.plot(100 * sub["removed"], sub["similarity"], ls="none", marker="x", ms=5,
                    color=_STYLES.get(metric, {}).get("color"), label=f"{metric} (population)")
    ax.set_xlabel("smallest principal components removed (%)")
    ax.set_ylabel("similarity")
    ax.set_ylim(0, 1.02)
    ax.legend()
    return ax


def similarity_heatmap(table, ax=None, title: str | None = None, vmin: float = 0.0, vmax: float = 1.0,
                       annotate: bool = False):
    """A layer × layer similarity table (rows: first model, columns: second) as a heatmap."""
    import matplotlib.pyplot as plt

    style()
    if ax is None:
        _, ax = subplots(figsize=(0.35 * table.shape[1] + 1.5, 0.35 * table.shape[0] + 1))
    im = ax.imshow(table.to_numpy(dtype=float), vmin=vmin, vmax=vmax, cmap="magma", aspect="auto")
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns], rotation=90)
    ax.set_yticks(range(table.shape[0]), [str(i) for i in table.index])
    if annotate:
        for i in range(table.shape[0]):
            for j in range(table.shape[1]):
                ax.text(j, i, f"{table.iat[i, j]:.2f}", ha="center", va="center", fontsize=6, color="w")
    ax.figure.colorbar(im, ax=ax, fraction=0.046)
    if title:
        ax.set_title(title)
    return ax
