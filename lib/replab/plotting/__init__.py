"""Figures: the book's shared style and the figure helpers every page calls (one module per topic)."""
from __future__ import annotations

import matplotlib

__all__ = ["style", "image_grid", "bar_counts"]

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
        _, ax = plt.subplots(figsize=(min(1.0 * ncols, 10), min(1.0 * nrows, 10)))
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
        _, ax = plt.subplots(figsize=(4, 2.5))
    ax.bar([str(v) for v in values], counts, color="C0")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("examples")
    if title:
        ax.set_title(title)
    return ax
