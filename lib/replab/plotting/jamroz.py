"""Figures of the Jamroż et al. (2020) pages: min/mean/max bands over kept Gibbs sweeps, per layer or per β,
and rows of decoded samples.

Every helper takes the pandas DataFrames the pages build (columns ``mean``, ``min``, ``max`` and a grouping column)
and returns the axes. The bands are what the paper's error bars show: the spread over kept sweeps of the chain.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from . import image_grid, style
from ._figure import subplots

__all__ = ["bands", "layer_bands", "width_panels", "beta_bands", "sample_rows", "quality_lines"]


def bands(df, x: str, group: str, ax=None, order: Sequence | None = None, xlabel: str | None = None,
          ylabel: str = "relative entropy (nats)", title: str | None = None, logx: bool = False,
          logy: bool = False, floor: float = 1e-3):
    """One line (mean) with a shaded min-max band per value of ``group``, against column ``x``.

    ``logy`` draws a log axis with values clamped below at ``floor`` (Monte Carlo estimates of a divergence near 0
    can come out slightly negative).
    """
    import matplotlib.pyplot as plt

    style()
    if ax is None:
        _, ax = subplots(figsize=(4.2, 3.0))
    for i, key in enumerate(order if order is not None else sorted(df[group].unique(), key=str)):
        part = df[df[group] == key].sort_values(x)
        if part.empty:
            continue
        if logy:
            part = part.assign(**{c: part[c].clip(lower=floor) for c in ("mean", "min", "max")})
        ax.plot(part[x], part["mean"], marker="o", ms=3, color=f"C{i}", label=str(key))
        ax.fill_between(part[x], part["min"], part["max"], color=f"C{i}", alpha=0.25, lw=0)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def layer_bands(df, group: str = "condition", ax=None, order: Sequence | None = None, title: str | None = None,
                ylabel: str = "relative entropy (nats)", logy: bool = True):
    """Fig. 1: relative entropy per conv layer (1 = the first), one band per condition (log axis by default)."""
    ax = bands(df, "layer", group, ax=ax, order=order, xlabel="conv layer", ylabel=ylabel, title=title, logy=logy)
    ax.set_xticks(sorted(df["layer"].unique()))
    return ax


def width_panels(df, group: str = "regulariser", panel: str = "width", order: Sequence | None = None,
                 title: str = "CNN {depth}×{width}", depth: int | None = None):
    """Fig. 1 / App. C: one panel per network width, one band per regulariser; returns the list of axes."""
    import matplotlib.pyplot as plt

    style()
    keys = sorted(df[panel].unique())
    _, axes = subplots(1, len(keys), figsize=(4.0 * len(keys), 3.0), squeeze=False, sharey=True)
    for ax, key in zip(axes[0], keys):
        layer_bands(df[df[panel] == key], group=group, ax=ax, order=order,
                    title=title.format(depth=depth if depth is not None else "", width=key))
    return list(axes[0])


def beta_bands(df, group: str = "objective", ax=None, ylabel: str = "relative entropy (nats)",
               title: str | None = None, order: Sequence | None = None, logy: bool = False):
    """Fig. 2: a divergence against β (log axis), one band per objective."""
    return bands(df, "beta", group, ax=ax, order=order, xlabel="β", ylabel=ylabel, title=title, logx=True,
                 logy=logy)


def sample_rows(rows: Mapping[str, object], ncols: int = 16, height: float = 1.2):
    """Rows of image grids, one per label (e.g. ``{"prior": images, "DP-GMM": images}``); returns the axes."""
    import matplotlib.pyplot as plt

    style()
    n = len(rows)
    fig, axes = subplots(n, 1, figsize=(min(ncols * 0.6, 12), height * n * max(1, 16 // ncols)),
                             squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows.items()):
        image_grid(images, ncols=ncols, ax=ax, title=label)
    fig.tight_layout()
    return list(axes[:, 0])


def quality_lines(df, floor: Mapping[str, float] | None = None, axes=None):
    """Fréchet distance and classifier confidence of decoded samples against β, one line per (objective, codes).

    ``df`` has columns ``objective``, ``beta``, ``codes``, ``fd`` and ``confidence``, and may hold several rows per
    (objective, codes, β), e.g. one per kept Gibbs sweep: the line is then their mean and the shaded band their
    minimum and maximum. ``floor`` (the same two numbers for real images) is drawn as dotted lines. Returns the two
    axes.
    """
    import matplotlib.pyplot as plt

    style()
    if axes is None:
        _, axes = subplots(1, 2, figsize=(9, 3.2))
    groups = sorted(df.groupby(["objective", "codes"]).groups, key=str)
    for ax, col, label in zip(axes, ("fd", "confidence"), ("Fréchet distance (lower is better)", "confidence")):
        for i, (name, codes) in enumerate(groups):
            part = df[(df["objective"] == name) & (df["codes"] == codes)]
            stats = part.groupby("beta")[col].agg(["mean", "min", "max"]).sort_index()
            ax.plot(stats.index, stats["mean"], marker="o", ms=3, color=f"C{i}",
                    ls="-" if codes == "prior" else "--", label=f"{name}, {codes}")
            if (stats["max"] > stats["min"]).any():
                ax.fill_between(stats.index, stats["min"], stats["max"], color=f"C{i}", alpha=0.2, lw=0)
        if floor is not None:
            ax.axhline(floor[col], color="k", lw=0.8, ls=":", label="real images")
        ax.set_xscale("log")
        ax.set_xlabel("β")
        ax.set_ylabel(label)
    axes[1].legend(fontsize=7)
    return list(axes)
