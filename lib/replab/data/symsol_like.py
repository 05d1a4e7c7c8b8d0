"""symsol_like: a second generated shapes family for transfer, on dSprites' 64×64 canvas and factor grid.

Five binary silhouettes of solids in the spirit of SYMSOL (Murphy et al., 2021), as Bonheme & Grześ (2023)
pair dSprites with a reduced Symsol: 0 tetrahedron (a triangle with its three visible inner edges drawn as gaps),
1 cube (an isometric hexagon with the Y of its near corner), 2 cylinder (a rectangle capped by ellipses, with
the rim of its top face), 3 cone (a triangle on an elliptic base), 4 icosahedron (a decagon with an inner
pentagon outline). Factors: shape (0..4), scale (linspace 0.5..1, 6), orientation (linspace 0..2π, 40),
posX, posY (linspace 0..1, 32 each); 1,228,800 images rendered lazily by index, placed as in
:mod:`replab.data.dsprites` (radius 0.2·scale, centre 0.2 + 0.6·pos). ``labels`` are the shape classes.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ._base import LazyImageDataset, split_indices
from ._shapes import FactorGrid, convex_polygon, ellipse, grid_dataset, near_segments, regular_polygon, render_grid

FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
SHAPE_NAMES = ("tetrahedron", "cube", "cylinder", "cone", "icosahedron")
GRID = FactorGrid(FACTOR_NAMES, [np.arange(5.0), np.linspace(0.5, 1.0, 6), np.linspace(0.0, 2 * math.pi, 40),
                                 np.linspace(0.0, 1.0, 32), np.linspace(0.0, 1.0, 32)])
SIZE = 64
EDGE = 0.09  # half-width of a drawn edge, in units of the shape radius

_TRI = regular_polygon(3, 1.0)
_TRI_INNER = (0.0, -0.2)
_HEX = regular_polygon(6, 0.95)
_DEC = regular_polygon(10, 0.95)
_PENT = regular_polygon(5, 0.5)
_triangle, _hexagon, _decagon = convex_polygon(_TRI), convex_polygon(_HEX), convex_polygon(_DEC)
_cone_body = convex_polygon([(0.0, 0.95), (-0.6, -0.55), (0.6, -0.55)])


def tetrahedron(u, v):
    return _triangle(u, v) & ~near_segments(u, v, [(_TRI_INNER, p) for p in _TRI], EDGE)


def cube(u, v):
    # the near corner at the centre joins the vertices at 30°, 150° and 270° (index 5, 1, 3 from 90°)
    return _hexagon(u, v) & ~near_segments(u, v, [((0.0, 0.0), _HEX[k]) for k in (1, 3, 5)], EDGE)


def cylinder(u, v):
    body = (u.abs() <= 0.5) & (v.abs() <= 0.6)
    top = ellipse(u, v - 0.6, 0.5, 0.22)
    bottom = ellipse(u, v + 0.6, 0.5, 0.22)
    rim = ~ellipse(u, v - 0.6, 0.5 - EDGE, 0.22 - EDGE) & top
    return (body | top | bottom) & ~(rim & (v < 0.6))


def cone(u, v):
    return _cone_body(u, v) | ellipse(u, v + 0.55, 0.6, 0.22)


def icosahedron(u, v):
    pentagon = list(zip(_PENT, _PENT[1:] + _PENT[:1]))
    return _decagon(u, v) & ~near_segments(u, v, pentagon, EDGE)


SHAPES = (tetrahedron, cube, cylinder, cone, icosahedron)


def render(ids) -> torch.Tensor:
    """The images (B, 1, 64, 64) uint8 of flat grid ids."""
    return render_grid(GRID, ids, SHAPES, SIZE)


def load(split: str = "train", root=None, test_fraction: float = 0.1, seed: int = 0) -> LazyImageDataset:
    """The lazily rendered grid with a fixed seeded train/test partition of the ids."""
    return grid_dataset(GRID, render, split_indices(len(GRID), split, test_fraction, seed), SIZE, "symsol_like")
