"""Figures of the Nash et al. (2019) pages: inputs beside per-layer samples and reconstructions (Figs. 1, 2, 4)
and cross-entropies per layer or over training (Fig. 5)."""
from __future__ import annotations

from typing import Mapping

import torch

from . import image_grid, style
from ._figure import subplots

__all__ = ["inversion_panels", "nce_lines", "nce_and_bound", "nce_and_position", "nce_over_training"]


def inversion_panels(inputs: torch.Tensor, columns: Mapping[str, torch.Tensor], title: str | None = None):
    """One row per input image: the input, then each named column (images (N, C, H, W), or (N, S, C, H, W) for
    several samples side by side). Returns the figure."""
    import matplotlib.pyplot as plt

    style()
    cols = {"input": inputs, **columns}
    fig, axes = subplots(1, len(cols), figsize=(1.3 * sum(c.shape[1] if c.ndim == 5 else 1
                                                              for c in cols.values()) + 0.5,
                                                     1.1 * len(inputs) + 0.5), squeeze=False)
    for ax, (name, imgs) in zip(axes[0], cols.items()):
        k = imgs.shape[1] if imgs.ndim == 5 else 1
        image_grid(imgs.reshape(-1, *imgs.shape[-3:]), ncols=k, ax=ax, title=name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def nce_lines(df, x: str, y: str = "NCE (nats)", group: str | None = None, ax=None, logx=False,
              title: str | None = None, err: str | None = "stderr"):
    """Negative cross-entropy against ``x`` (a layer or a number of updates), one line per ``group``."""
    import matplotlib.pyplot as plt

    style()
    if ax is None:
        _, ax = subplots(figsize=(4.2, 3.0))
    groups = [(None, df)] if group is None else list(df.groupby(group, sort=False))
    for key, part in groups:
        xs = part[x].tolist()
        pos = xs if logx else list(range(len(xs)))
        ax.errorbar([max(p, 1) for p in pos] if logx else pos, part[y],
                    yerr=None if err is None or err not in part else part[err], marker="o", capsize=3,
                    label=None if key is None else str(key))
        if not logx:
            ax.set_xticks(pos, [str(v) for v in xs])
    if logx:
        ax.set_xscale("log")
        ax.set_xlabel(f"{x} (0 drawn at 1)")
    else:
        ax.set_xlabel(x)
    ax.set_ylabel(y)
    if group is not None:
        ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return ax


def _two_panels():
    import matplotlib.pyplot as plt

    return subplots(1, 2, figsize=(9, 3.2))  # styled by nce_lines, as the pages' figures always were


def nce_and_bound(table):
    """Fig. 5a and the information bound: NCE per layer, and H*(x) − H*(x|h) in bits/dim (a :func:`nats_table`
    of :mod:`replab.experiments.nash`, indexed by layer). Returns the figure."""
    fig, axes = _two_panels()
    nce_lines(table.reset_index(), "layer", ax=axes[0], title="NCE −H*(x|h) (Fig. 5a)")
    nce_lines(table.reset_index(), "layer", y="I bound (bits/dim)", err=None, ax=axes[1],
              title="H*(x) − H*(x|h), bits/dim")
    fig.tight_layout()
    return fig


def nce_and_position(table, chance: float):
    """Section 5.2: the NCE of FC3 per net, and the distance between the ink centroids of samples and input
    against ``chance`` (that between unrelated canvases). Returns the figure."""
    fig, axes = _two_panels()
    nce_lines(table.reset_index(), "net", ax=axes[0], title="NCE of FC3")
    nce_lines(table.reset_index(), "net", y="centroid error (px)", err=None, ax=axes[1],
              title="sample vs input ink centroid")
    axes[1].axhline(chance, color="grey", ls="--", label="chance")
    axes[1].legend(frameon=False)
    fig.tight_layout()
    return fig


def nce_over_training(dyn, layers):
    """Fig. 5b: one panel per layer, the NCE against classifier updates (log axis), one line per classifier.
    ``dyn`` has columns classifier, layer, updates, NCE (nats) and stderr. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = subplots(1, len(layers), figsize=(4.4 * len(layers), 3.2), squeeze=False)
    for ax, layer in zip(axes[0], layers):
        nce_lines(dyn[dyn.layer == layer], "updates", group="classifier", ax=ax, logx=True, title=layer)
    fig.tight_layout()
    return fig
