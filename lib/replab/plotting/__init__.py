"""Figures: the book's shared style and the figure helpers every page calls (one module per topic)."""
from __future__ import annotations

import matplotlib

from ._figure import subplots

__all__ = ["style", "image_grid", "bar_counts", "dataset_tour", "factor_histograms"]

_STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": "viridis",
    "legend.frameon": False,
}


def style() -> None:
    """Apply the book's figure style (called by every helper; idempotent)."""
    matplotlib.rcParams.update(_STYLE)


def image_grid(images, ncols: int = 8, titles=None, ax=None, title: str | None = None, cmap: str = "gray"):
    """Show a batch of images (N×C×H×W or N×H×W, uint8 or float in [0, 1]) as one grid; returns the axes."""
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    style()
    x = images.detach().cpu() if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"images: expected N×C×H×W or N×H×W, got shape {tuple(x.shape)}")
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    n, c, h, w = x.shape
    nrows = max(1, -(-n // ncols))
    canvas = torch.ones(c, nrows * (h + 1) + 1, ncols * (w + 1) + 1)
    for i in range(n):
        r, q = divmod(i, ncols)
        canvas[:, 1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + q * (w + 1): 1 + q * (w + 1) + w] = x[i]
    if ax is None:
        _, ax = subplots(figsize=(min(1.0 * ncols, 10), min(1.0 * nrows, 10)))
    img = canvas[0] if c == 1 else canvas.permute(1, 2, 0)
    ax.imshow(img.clamp(0, 1).numpy(), cmap=cmap if c == 1 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def bar_counts(labels, ax=None, title: str | None = None, xlabel: str = "class"):
    """A bar chart of how many examples each label has; returns the axes."""
    import matplotlib.pyplot as plt
    import numpy as np

    style()
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    if ax is None:
        _, ax = subplots(figsize=(4, 2.5))
    ax.bar([str(v) for v in values], counts, color="C0")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("examples")
    if title:
        ax.set_title(title)
    return ax


def dataset_tour(names, n: int, seed: int = 0, split: str = "train"):
    """One grid of at most 36 examples of each dataset in ``names``, side by side; returns the figure."""
    import matplotlib.pyplot as plt

    from .. import data

    style()
    fig, axes = subplots(1, len(names), figsize=(3.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        ds = data.load(name, split=split).sample(min(n, 36), seed=seed)
        image_grid(ds.images, ncols=6, ax=ax, title=name)
    fig.tight_layout()
    return fig


def factor_histograms(factors, names, bins: int = 32):
    """One histogram per column of ``factors`` (N×F, the generative factors of a dataset), titled by ``names``;
    returns the figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    style()
    f = np.asarray(factors.numpy() if hasattr(factors, "numpy") else factors)
    if f.ndim != 2 or f.shape[1] != len(names):
        raise ValueError(f"factors: expected N×{len(names)} (one column per name), got shape {f.shape}")
    fig, axes = subplots(1, len(names), figsize=(2.2 * len(names), 2.2), squeeze=False)
    for j, (ax, name) in enumerate(zip(axes[0], names)):
        ax.hist(f[:, j], bins=bins, color="C1")
        ax.set_title(name)
    fig.tight_layout()
    return fig
