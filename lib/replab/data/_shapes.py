"""Vectorised rendering of binary shapes on a square canvas, and factor grids indexed like dSprites.

A shape is a predicate on local coordinates ``(u, v)`` (y pointing up, the shape inside the unit disc). An
example with centre ``(cx, cy)`` (canvas units, rows growing downwards), size ``r`` and orientation ``theta``
(counter-clockwise on screen) colours pixel ``p`` when ``shape(R(-theta) (p - c) / r)`` holds, tested at pixel
centres, so a batch of B images is one (B, H·W) tensor computation.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

Predicate = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["FactorGrid", "render_shapes", "render_grid", "grid_dataset", "square", "ellipse", "heart", "convex_polygon", "regular_polygon",
           "near_segments"]


class FactorGrid:
    """The full Cartesian product of factor values, flattened row-major (the last factor varies fastest).

    ``values[k]`` holds the values of factor k; example id ``i`` has grid indices ``classes(i)`` (as dSprites'
    ``latents_classes``) and values ``values_of(i)`` (as its ``latents_values``).
    """

    def __init__(self, names: Sequence[str], values: Sequence[np.ndarray]):
        self.names = tuple(names)
        self.values = [torch.as_tensor(np.asarray(v, dtype=np.float64)) for v in values]
        self.sizes = tuple(len(v) for v in self.values)
        # strides for unravelling a flat index: the last factor has stride 1.
        self._strides = torch.tensor(np.cumprod((1,) + self.sizes[::-1])[:-1][::-1].copy(), dtype=torch.int64)

    def __len__(self) -> int:
        return int(np.prod(self.sizes))

    def classes(self, ids: torch.Tensor) -> torch.Tensor:
        ids = torch.as_tensor(ids, dtype=torch.int64).reshape(-1)
        return (ids[:, None] // self._strides) % torch.tensor(self.sizes)

    def values_of(self, ids: torch.Tensor) -> torch.Tensor:
        c = self.classes(ids)
        return torch.stack([v[c[:, k]] for k, v in enumerate(self.values)], dim=1)

    def ids_of(self, classes: torch.Tensor) -> torch.Tensor:
        return (torch.as_tensor(classes, dtype=torch.int64) * self._strides).sum(dim=-1)


def render_shapes(shape_ids: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, radius: torch.Tensor,
                  theta: torch.Tensor, shapes: Sequence[Predicate], size: int = 64, chunk: int = 2048,
                  window: bool = True) -> torch.Tensor:
    """Binary uint8 images (B, 1, size, size), 255 inside the shape, 0 outside.

    Every shape lies inside its disc of radius ``radius``, so only a square window around the centre is tested
    (``window=True``, several times faster); ``window=False`` tests the whole canvas (same pixels, as a check).
    """
    n = len(shape_ids)
    out = torch.zeros(n, size, size, dtype=torch.uint8)
    if n == 0:
        return out.reshape(-1, 1, size, size)
    w = min(size, int(math.ceil(2 * float(radius.max()) * size)) + 2) if window else size
    j = torch.arange(w, dtype=torch.float64)
    for start in range(0, n, chunk):
        sl = slice(start, start + chunk)
        cxs, cys = cx[sl].double(), cy[sl].double()
        ox = torch.floor(cxs * size - w / 2).clamp(0, size - w).long()
        oy = torch.floor(cys * size - w / 2).clamp(0, size - w).long()
        px = (ox[:, None] + j + 0.5) / size        # (b, w) pixel-centre columns, canvas units
        py = (oy[:, None] + j + 0.5) / size        # (b, w) rows
        dx = (px - cxs[:, None])[:, None, :]
        dy = (cys[:, None] - py)[:, :, None]       # y up
        cos, sin = torch.cos(theta[sl]).double()[:, None, None], torch.sin(theta[sl]).double()[:, None, None]
        r = radius[sl].double()[:, None, None]
        u = ((cos * dx + sin * dy) / r).reshape(len(cxs), -1)
        v = ((-sin * dx + cos * dy) / r).reshape(len(cxs), -1)
        patch = torch.zeros(len(cxs), w * w, dtype=torch.uint8)
        ids = shape_ids[sl]
        for k, pred in enumerate(shapes):
            rows = torch.nonzero(ids == k).reshape(-1)
            if len(rows):
                patch[rows] = pred(u[rows], v[rows]).to(torch.uint8) * 255
        b = torch.arange(start, start + len(cxs))[:, None, None]
        out[b, (oy[:, None] + torch.arange(w))[:, :, None], (ox[:, None] + torch.arange(w))[:, None, :]] = \
            patch.reshape(-1, w, w)
    return out.reshape(-1, 1, size, size)


def render_grid(grid: FactorGrid, ids, shapes: Sequence[Predicate], size: int = 64) -> torch.Tensor:
    """Render grid ids of a grid with factors named shape, scale, orientation, posX, posY (others ignored).

    The shape sits in a disc of radius ``0.2·scale`` canvas widths centred at ``0.2 + 0.6·pos``.
    """
    ids = torch.as_tensor(ids, dtype=torch.int64).reshape(-1)
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= len(grid)):
        raise ValueError(f"ids: grid ids lie in [0, {len(grid)}), got {int(ids.min())}..{int(ids.max())}")
    col = {name: k for k, name in enumerate(grid.names)}
    c, val = grid.classes(ids), grid.values_of(ids)
    return render_shapes(c[:, col["shape"]], 0.2 + 0.6 * val[:, col["posX"]], 0.2 + 0.6 * val[:, col["posY"]],
                         0.2 * val[:, col["scale"]], val[:, col["orientation"]], shapes, size=size)


def grid_dataset(grid: FactorGrid, render: Callable[[torch.Tensor], torch.Tensor], ids, size: int, name: str):
    """A lazy dataset over grid ``ids``: labels are the shape classes, factors the grid values."""
    from ._base import LazyImageDataset

    ids = torch.as_tensor(ids, dtype=torch.int64)
    classes = grid.classes(ids)
    return LazyImageDataset(render, ids, (1, size, size), labels=classes[:, grid.names.index("shape")],
                            factors=grid.values_of(ids), factor_names=grid.names, factor_classes=classes, name=name)


# -- shape predicates (all inside the unit disc) ----------------------------------------------------------------
def square(u, v, half: float = 1 / math.sqrt(2)):
    return (u.abs() <= half) & (v.abs() <= half)


def ellipse(u, v, a: float = 1.0, b: float = 0.5):
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def heart(u, v):
    """The classic heart curve (x² + y² − 1)³ ≤ x² y³, lobes up, point down, centred and shrunk into the disc."""
    x, y = u * 1.34, v * 1.34 + 0.118
    return (x * x + y * y - 1.0) ** 3 - x * x * y ** 3 <= 0.0


def convex_polygon(vertices: Sequence[tuple[float, float]]) -> Predicate:
    """Inside a convex polygon given counter-clockwise."""
    vs = [(float(a), float(b)) for a, b in vertices]

    def pred(u, v):
        inside = torch.ones_like(u, dtype=torch.bool)
        for (x0, y0), (x1, y1) in zip(vs, vs[1:] + vs[:1]):
            inside &= (x1 - x0) * (v - y0) - (y1 - y0) * (u - x0) >= 0
        return inside
    return pred


def regular_polygon(n: int, radius: float = 1.0, phase: float = math.pi / 2) -> list[tuple[float, float]]:
    """Vertices (counter-clockwise) of a regular n-gon, the first at angle ``phase``."""
    return [(radius * math.cos(phase + 2 * math.pi * k / n), radius * math.sin(phase + 2 * math.pi * k / n))
            for k in range(n)]


def near_segments(u, v, segments: Sequence[tuple[tuple[float, float], tuple[float, float]]], width: float):
    """True within ``width`` of any of the segments (used to draw visible edges as gaps)."""
    near = torch.zeros_like(u, dtype=torch.bool)
    for (x0, y0), (x1, y1) in segments:
        ex, ey = x1 - x0, y1 - y0
        t = (((u - x0) * ex + (v - y0) * ey) / (ex * ex + ey * ey)).clamp(0.0, 1.0)
        near |= (u - x0 - t * ex) ** 2 + (v - y0 - t * ey) ** 2 <= width * width
    return near
