"""symsol_solids: shaded grey 3-D solids seen from uniformly random rotations, a generated stand-in for SYMSOL.

SYMSOL (Murphy et al., 2021; the reduced 64×64 grey set of Bonheme & Grześ, 2023) renders five solids from
uniformly random 3-D rotations, centred, at one size, with shading. This set does the same, offline:

* solids (``labels`` 0..4, as Symsol orders them): 0 tetrahedron, 1 cube, 2 icosahedron, 3 cone, 4 cylinder, as
  closed triangle meshes (cone and cylinder with ``SEGMENTS`` = 32 side facets), centred on the origin and scaled
  to circumradius 1, drawn with circumradius ``RADIUS`` canvas widths so that no rotation leaves the frame;
* rotation: uniform on SO(3), a normalised Gaussian quaternion drawn from ``numpy.random.default_rng([seed, i])``
  for image ``i``, so an image depends only on ``seed`` and its index (never on ``n``, the split or the batch);
* orthographic projection along the view axis, depth by a z-buffer of the visible surface, Lambertian shading of
  every flat face from the fixed ``LIGHT`` plus ``AMBIENT``: grey ``255·(AMBIENT + (1 − AMBIENT)·max(0, n·LIGHT))``
  on the solid, 0 (black) around it, averaged over ``SUPERSAMPLE``×``SUPERSAMPLE`` samples per pixel (anti-aliased
  edges). Images are 1×64×64 uint8 and render by index when used.

The z-buffer is exact and vectorised because every solid is convex: a pixel's ray ``(x, y, z)`` lies inside the
solid where it lies inside every face plane ``n·p ≤ d``; the planes that face the viewer (``n_z > 0``) bound z
from above, the others from below, so the nearest surface point is the least upper bound and its face the
visible one (the same depth and face as rasterising the triangles with a depth test, which the tests check), and
the pixel is background where the least upper bound falls below the greatest lower bound. Pixel centres are
sampled first; the 4×4 samples are taken only at pixels near an edge (a change of face or of solid and
background among the 3×3 neighbouring centres, or a projected vertex), which gives the full 4×4 image up to
rounding at a fraction of the cost (a few milliseconds per image on one core).

``factors``: ``shape`` and the rotation as a unit quaternion ``qw, qx, qy, qz`` (scalar first, ``qw ≥ 0``) that
maps solid coordinates to view coordinates (x right, y up, z towards the viewer). Shapes cycle with the index
(image ``i`` shows solid ``i mod 5``), so the classes are balanced. Default size: ``N_IMAGES`` = 50,000 images,
the order of the reduced Symsol set; split: a fixed seeded 90/10 partition stratified by shape, as ``symsol``.
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from ._base import LazyImageDataset, split_indices

__all__ = ["load", "render", "render_solids", "rotations", "rotation_matrices", "SOLIDS", "SHAPE_NAMES",
           "FACTOR_NAMES", "Solid"]

SHAPE_NAMES = ("tetrahedron", "cube", "icosahedron", "cone", "cylinder")
FACTOR_NAMES = ("shape", "qw", "qx", "qy", "qz")
SIZE = 64
N_IMAGES = 50_000
RADIUS = 0.45      # every solid's circumradius, in canvas widths
SEGMENTS = 32      # side facets of the cone and the cylinder
SUPERSAMPLE = 4    # samples per pixel along each axis
AMBIENT = 0.2      # grey level of a face turned away from the light, as a fraction of 255
# direction towards the light in view coordinates (x right, y up, z towards the viewer): above, left, in front
LIGHT = tuple(float(c) for c in np.array([-0.4, 0.5, 0.77]) / np.linalg.norm([-0.4, 0.5, 0.77]))


@dataclass(frozen=True)
class Solid:
    """A convex triangle mesh: ``vertices`` (V×3), ``faces`` (F×3 vertex indices, counter-clockwise seen from
    outside) and its distinct face planes ``normals`` (K×3 outward unit vectors) and ``offsets`` (K), the solid
    being ``{p : normals·p ≤ offsets}``."""
    name: str
    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    offsets: np.ndarray

    def surface_area(self) -> float:
        a, b, c = (self.vertices[self.faces[:, k]] for k in range(3))
        return float(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())


def _fan(points: np.ndarray, idx) -> list[tuple[int, int, int]]:
    """Triangles fanning the convex planar polygon of vertices ``idx`` (any order) from its first corner."""
    idx = np.asarray(idx)
    p = points[idx]
    centre = p.mean(axis=0)
    normal = np.cross(p[1] - p[0], p[2] - p[0])
    e1 = (p[0] - centre) / np.linalg.norm(p[0] - centre)
    e2 = np.cross(normal / np.linalg.norm(normal), e1)
    ring = idx[np.argsort(np.arctan2((p - centre) @ e2, (p - centre) @ e1))]
    return [(ring[0], ring[k], ring[k + 1]) for k in range(1, len(ring) - 1)]


def _solid(name: str, vertices, faces) -> Solid:
    """Centre-scaled to circumradius 1, every face turned outwards, and the distinct face planes."""
    v = np.asarray(vertices, dtype=np.float64)
    v = v / np.linalg.norm(v, axis=1).max()
    f = np.asarray(faces, dtype=np.int64)
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    inward = (n * v[f].mean(axis=1)).sum(axis=1) < 0       # the origin is inside every solid
    f[inward] = f[inward][:, ::-1]
    n[inward] = -n[inward]
    n = n / np.linalg.norm(n, axis=1, keepdims=True)
    d = (n * v[f[:, 0]]).sum(axis=1)
    _, first = np.unique(np.round(np.column_stack([n, d]), 9), axis=0, return_index=True)
    keep = np.sort(first)
    return Solid(name, v, f, n[keep], d[keep])


def _tetrahedron() -> Solid:
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=np.float64)
    return _solid("tetrahedron", v, list(itertools.combinations(range(4), 3)))


def _cube() -> Solid:
    v = np.array(list(itertools.product((-1.0, 1.0), repeat=3)))
    faces = [t for axis in range(3) for s in (-1.0, 1.0) for t in _fan(v, np.flatnonzero(v[:, axis] == s))]
    return _solid("cube", v, faces)


def _icosahedron() -> Solid:
    phi = (1 + math.sqrt(5)) / 2
    v = np.array([p for a, b in itertools.product((-1.0, 1.0), (-phi, phi))
                  for p in ((0, a, b), (a, b, 0), (b, 0, a))])
    edge = 2.0                                              # the shortest distance between these vertices
    faces = [t for t in itertools.combinations(range(12), 3)
             if all(abs(np.linalg.norm(v[i] - v[j]) - edge) < 1e-9 for i, j in itertools.combinations(t, 2))]
    return _solid("icosahedron", v, faces)


def _ring(radius: float, z: float) -> np.ndarray:
    t = 2 * np.pi * np.arange(SEGMENTS) / SEGMENTS
    return np.column_stack([radius * np.cos(t), radius * np.sin(t), np.full(SEGMENTS, z)])


def _cone() -> Solid:
    """Base radius 1, height 2 (apex half-angle atan(1/2) ≈ 26.6°), centred half-way up its axis."""
    v = np.vstack([_ring(1.0, -1.0), [[0.0, 0.0, 1.0]]])
    apex, k = SEGMENTS, np.arange(SEGMENTS)
    sides = [(apex, i, j) for i, j in zip(k, np.roll(k, -1))]
    return _solid("cone", v, sides + _fan(v, k))


def _cylinder() -> Solid:
    """Radius 0.75, height 2, centred."""
    v = np.vstack([_ring(0.75, -1.0), _ring(0.75, 1.0)])
    k = np.arange(SEGMENTS)
    sides = [t for i, j in zip(k, np.roll(k, -1)) for t in ((i, j, SEGMENTS + j), (i, SEGMENTS + j, SEGMENTS + i))]
    return _solid("cylinder", v, sides + _fan(v, k) + _fan(v, SEGMENTS + k))


SOLIDS = (_tetrahedron(), _cube(), _icosahedron(), _cone(), _cylinder())


def rotation_matrices(quaternions) -> torch.Tensor:
    """(B, 3, 3) float64 rotation matrices of unit quaternions (B, 4), scalar first."""
    q = torch.as_tensor(quaternions, dtype=torch.float64).reshape(-1, 4)
    q = q / q.norm(dim=1, keepdim=True)
    w, x, y, z = q.unbind(1)
    rows = [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]
    return torch.stack(rows, dim=1).reshape(-1, 3, 3)


def rotations(ids, seed: int = 0) -> np.ndarray:
    """(len(ids), 4) unit quaternions (scalar first, qw ≥ 0) of images ``ids``: uniform on SO(3), image ``i``'s
    a normalised Gaussian quaternion drawn from ``numpy.random.default_rng([seed, i])``."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if ids.size and ids.min() < 0:
        raise ValueError(f"ids: expected non-negative image indices, got {int(ids.min())}")
    q = np.array([np.random.default_rng([int(seed), int(i)]).standard_normal(4) for i in ids]).reshape(-1, 4)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 0] < 0] *= -1                                    # q and −q are one rotation: keep qw ≥ 0
    return q


@functools.lru_cache(maxsize=4)
def _rotation_table(seed: int, n: int) -> np.ndarray:
    """The rotations of images 0..n−1, drawn once per (seed, n) and shared by every split and subset."""
    q = rotations(np.arange(n), seed)
    q.setflags(write=False)
    return q


def _samples(size: int, supersample: int) -> np.ndarray:
    """Sample positions along one axis in solid units (the canvas centre at 0, circumradius 1): sample ``u`` of
    pixel ``j`` is entry ``j·supersample + u``."""
    s = size * supersample
    return ((np.arange(s) + 0.5) / s - 0.5) / RADIUS


def _rotate(rot: torch.Tensor, vectors: np.ndarray) -> torch.Tensor:
    """(b, K, 3) vectors (K×3) under rotations (b, 3, 3), written out so that an image's result does not depend
    on the batch it is rendered in."""
    v = torch.from_numpy(vectors)
    return torch.stack([rot[:, i, 0, None] * v[:, 0] + rot[:, i, 1, None] * v[:, 1] + rot[:, i, 2, None] * v[:, 2]
                        for i in range(3)], dim=-1)


@dataclass(frozen=True)
class _View:
    """One solid under b rotations, as the plane bounds along the view rays and a grey level per face.

    Along the ray (x, y, z) a face plane n·p ≤ d reads z ≤ (d − n_x x − n_y y) / n_z when it faces the viewer
    (n_z > 0) and z ≥ … otherwise: the visible point is the least upper bound, its face the visible face, and the
    ray misses the solid where that lies below the greatest lower bound. Each view's planes are sorted with the
    ``n_front`` facing the viewer first, so a view's upper bounds ``a x + b y + c_top`` are its first ``n_front``
    columns and its lower bounds ``a x + b y + c_bottom`` the rest (``c_top`` is +inf and ``c_bottom`` −inf where
    a column does not hold that kind of plane).
    """
    a: torch.Tensor          # (b, K) float32
    b: torch.Tensor
    c_top: torch.Tensor
    c_bottom: torch.Tensor
    shade: torch.Tensor      # (b, K) grey level of each face in [0, 1]
    n_front: torch.Tensor    # (b,) int64
    corners: torch.Tensor    # (b, V, 2) float64 projected vertices (x, y), solid units

    @classmethod
    def of(cls, solid: Solid, rot: torch.Tensor, light: torch.Tensor, ambient: float) -> "_View":
        n = _rotate(rot, solid.normals)                               # rotated outward normals (b, K, 3)
        nz = n[..., 2]
        # a plane seen edge-on (n_z ≈ 0) only cuts the silhouette: a tiny n_z makes its bound ±huge, rightly signed
        nz = torch.where(nz.abs() < 1e-7, torch.where(nz < 0, -1e-7, 1e-7), nz)
        front = nz > 0
        order = torch.argsort((~front).to(torch.int8), dim=1, stable=True)
        n, nz, front = n.gather(1, order[..., None].expand(-1, -1, 3)), nz.gather(1, order), front.gather(1, order)
        c = torch.from_numpy(solid.offsets)[order] / nz
        inf = torch.tensor(float("inf"), dtype=torch.float64)
        lit = n[..., 0] * light[0] + n[..., 1] * light[1] + n[..., 2] * light[2]
        return cls((-n[..., 0] / nz).float(), (-n[..., 1] / nz).float(), torch.where(front, c, inf).float(),
                   torch.where(front, -inf, c).float(), (ambient + (1 - ambient) * lit.clamp(min=0)).float(),
                   front.sum(dim=1), _rotate(rot, solid.vertices)[..., :2])

    def grey(self, i: int, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Grey levels and visible faces (−1 off the solid) of view ``i`` at points ``(x, y)`` (1-D, float32)."""
        front, back = slice(0, int(self.n_front[i])), slice(int(self.n_front[i]), self.a.shape[1])
        a, b = self.a[i, :, None], self.b[i, :, None]
        top, face = (a[front] * x + (b[front] * y + self.c_top[i, front, None])).min(dim=0)
        if back.start < back.stop:
            hit = top >= (a[back] * x + (b[back] * y + self.c_bottom[i, back, None])).amax(dim=0)
        else:                                           # no plane faces away: the ray is never bounded below
            hit = torch.isfinite(top)
        return torch.where(hit, self.shade[i][face], torch.zeros(())), torch.where(hit, face, -1)


def _render_one_solid(view: _View, size: int, supersample: int, adaptive: bool) -> torch.Tensor:
    """(b, size, size) grey levels in [0, 1], each pixel the mean of its supersample×supersample samples.

    ``adaptive``: sample each pixel centre first and supersample only pixels whose 3×3 neighbourhood shows more
    than one face (or face and background); a pixel whose nine neighbouring centres all see one face lies inside
    that face's projection (a convex polygon) but for slivers thinner than a pixel, so only edge pixels change,
    and those get the same samples as the full grid would.
    """
    fine = torch.from_numpy(_samples(size, supersample)).float()
    s = size * supersample
    if not adaptive:
        xs, ys = fine.repeat(s), -fine.repeat_interleave(s)
        return torch.stack([torch.nn.functional.avg_pool2d(view.grey(k, xs, ys)[0].reshape(1, s, s), supersample)[0]
                            for k in range(len(view.a))])
    centre = torch.from_numpy(_samples(size, 1)).float()
    xs, ys = centre.repeat(size), -centre.repeat_interleave(size)
    u = torch.arange(supersample)
    out = []
    for k in range(len(view.a)):
        grey, face = (t.reshape(size, size) for t in view.grey(k, xs, ys))
        f = face[None].float()
        edge = torch.nn.functional.max_pool2d(f, 3, 1, 1) != -torch.nn.functional.max_pool2d(-f, 3, 1, 1)
        # a corner sharper than the sample spacing can slip between centres: supersample around every vertex too
        col = torch.floor((view.corners[k, :, 0] * RADIUS + 0.5) * size).long().clamp(0, size - 1)
        row = torch.floor((0.5 - view.corners[k, :, 1] * RADIUS) * size).long().clamp(0, size - 1)
        near = torch.zeros(1, size, size)
        near[0, row, col] = 1.0
        edge |= torch.nn.functional.max_pool2d(near, 3, 1, 1) > 0
        i, j = torch.nonzero(edge[0], as_tuple=True)
        if len(i):
            sx = fine[(j[:, None] * supersample + u)[:, None, :]].expand(-1, supersample, -1).reshape(-1)
            sy = -fine[(i[:, None] * supersample + u)[:, :, None]].expand(-1, -1, supersample).reshape(-1)
            grey[i, j] = view.grey(k, sx, sy)[0].reshape(len(i), -1).mean(dim=1)
        out.append(grey)
    return torch.stack(out)


def render_solids(shapes, quaternions, size: int = SIZE, *, supersample: int = SUPERSAMPLE, adaptive: bool = True,
                  light=LIGHT, ambient: float = AMBIENT, chunk: int = 64) -> torch.Tensor:
    """uint8 images (B, 1, size, size) of solids ``shapes`` (B ints 0..4) under rotations ``quaternions`` (B×4).

    ``light`` (a direction towards the light in view coordinates, normalised here) and ``ambient`` set the
    shading; ``supersample`` the anti-aliasing (``adaptive``: at edge pixels only, the same image up to rounding);
    ``chunk`` images are set up at a time. An image does not depend on the others rendered with it.
    """
    shapes = torch.as_tensor(np.asarray(shapes), dtype=torch.int64).reshape(-1)
    rot = rotation_matrices(quaternions)
    if len(rot) != len(shapes):
        raise ValueError(f"quaternions: expected one per shape ({len(shapes)}), got {len(rot)}")
    if shapes.numel() and (int(shapes.min()) < 0 or int(shapes.max()) >= len(SOLIDS)):
        raise ValueError(f"shapes: expected classes 0..{len(SOLIDS) - 1}, got {int(shapes.min())}..{int(shapes.max())}")
    lit = torch.as_tensor(light, dtype=torch.float64)
    lit = lit / lit.norm()
    out = torch.zeros(len(shapes), size, size, dtype=torch.uint8)
    for k, solid in enumerate(SOLIDS):
        rows = torch.nonzero(shapes == k).reshape(-1)
        for start in range(0, len(rows), chunk):
            r = rows[start:start + chunk]
            grey = _render_one_solid(_View.of(solid, rot[r], lit, ambient), size, supersample, adaptive)
            out[r] = (grey * 255).round().clamp(0, 255).to(torch.uint8)
    return out[:, None]


def render(ids, seed: int = 0) -> torch.Tensor:
    """The images (B, 1, 64, 64) uint8 of image indices ``ids``: solid ``i mod 5`` under rotation ``i``."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    return render_solids(ids % len(SOLIDS), rotations(ids, seed))


@dataclass(frozen=True)
class _Renderer:
    """``render`` reading the rotations from a table drawn once (the same quaternions, without redrawing)."""
    table: np.ndarray

    def __call__(self, ids) -> torch.Tensor:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        return render_solids(ids % len(SOLIDS), self.table[ids])


def load(split: str = "train", root=None, n: int = N_IMAGES, seed: int = 0, test_fraction: float = 0.1
         ) -> LazyImageDataset:
    """``n`` images (rendered on use) with a fixed seeded train/test partition stratified by solid; ``seed`` sets
    both the rotations and the partition. ``root`` is unused (nothing is read)."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected a positive number of images, got {n!r}")
    labels = np.arange(n) % len(SOLIDS)
    ids = split_indices(n, split, test_fraction, seed, stratify=labels)
    table = _rotation_table(int(seed), int(n))
    factors = np.column_stack([labels[ids], table[ids]])
    return LazyImageDataset(_Renderer(table), ids, (1, SIZE, SIZE), labels=labels[ids],
                            factors=factors, factor_names=FACTOR_NAMES, name="symsol_solids")
