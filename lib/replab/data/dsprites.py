"""dSprites: an exact generator of the factor grid of Matthey et al. (2017), or the real ``.npz`` when present.

Factors, in the order and with the values of the original ``latents_values`` / ``latents_classes``:
color (1 value, 1.0), shape (square, ellipse, heart as 1, 2, 3), scale (6 values, linspace 0.5..1),
orientation (40 values, linspace 0..2π, both ends included, so 0 and 2π render alike as in the original),
posX and posY (32 values each, linspace 0..1). 3·6·40·32·32 = 737,280 binary 64×64 images, flattened
row-major with posY varying fastest, as in the original file.

The generator draws each shape inside a disc of radius ``0.2·scale`` canvas widths (12.8 px at scale 1), centred
at ``0.2 + 0.6·pos`` (posX along columns, posY along rows, downwards), so no shape ever leaves the canvas; the
outlines are our own, not pixel copies of the original sprites. Images are rendered lazily by index (see
:class:`~replab.data._base.LazyImageDataset`): ``.images`` of the full set raises; use ``.sample(n, seed)``,
``.subset(indices)`` or ``.batches(batch_size)``.
"""
from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import torch

from ._base import LazyImageDataset, check_split, require_file, resolve_root, split_indices
from ._shapes import FactorGrid, ellipse, grid_dataset, heart, render_grid, square

FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
FACTOR_NAMES = ("color", "shape", "scale", "orientation", "posX", "posY")
SHAPE_NAMES = ("square", "ellipse", "heart")
GRID = FactorGrid(FACTOR_NAMES, [np.array([1.0]), np.array([1.0, 2.0, 3.0]), np.linspace(0.5, 1.0, 6),
                                 np.linspace(0.0, 2 * math.pi, 40), np.linspace(0.0, 1.0, 32),
                                 np.linspace(0.0, 1.0, 32)])
SIZE = 64


def render(ids) -> torch.Tensor:
    """The generated images (B, 1, 64, 64) uint8 of flat grid ids."""
    return render_grid(GRID, ids, (square, ellipse, heart), SIZE)


def generate(split: str = "all", test_fraction: float = 0.1, seed: int = 0) -> LazyImageDataset:
    """The lazily rendered grid; ``split`` picks a fixed seeded train/test partition of the ids."""
    return grid_dataset(GRID, render, split_indices(len(GRID), split, test_fraction, seed), SIZE, "dsprites")


def _read_npy_member_packed(path: Path, member: str = "imgs.npy", chunk: int = 16384) -> tuple[np.ndarray, int]:
    """Stream a binary (N, H, W) array out of the npz, bit-packed along W (3 GB -> 377 MB); returns it and W."""
    with zipfile.ZipFile(path) as z, z.open(member) as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if fortran or len(shape) != 3:
            raise ValueError(f"{path.name}: {member} must be a C-ordered (N, H, W) array, got shape {shape}")
        n, h, w = shape
        row_bytes = h * w * dtype.itemsize
        out = np.empty((n, h, (w + 7) // 8), dtype=np.uint8)
        for start in range(0, n, chunk):
            rows = min(chunk, n - start)
            block = np.frombuffer(f.read(rows * row_bytes), dtype=dtype).reshape(rows, h, w)
            out[start:start + rows] = np.packbits(block != 0, axis=-1)
    return out, w


def load_file(path, split: str = "all", test_fraction: float = 0.1, seed: int = 0) -> LazyImageDataset:
    """The real dSprites file (``imgs``, ``latents_values``, ``latents_classes``), decoded lazily by index."""
    path = Path(path)
    with np.load(path) as f:
        values, classes = f["latents_values"], f["latents_classes"].astype(np.int64)
    packed, width = _read_npy_member_packed(path)
    h = packed.shape[1]

    def decode(ids: torch.Tensor) -> torch.Tensor:
        bits = np.unpackbits(packed[ids.numpy()], axis=-1)[..., :width]
        return torch.from_numpy(bits * np.uint8(255))[:, None]

    ids = torch.from_numpy(split_indices(len(packed), split, test_fraction, seed))
    return LazyImageDataset(decode, ids, (1, h, width), labels=torch.from_numpy(classes[ids.numpy(), 1]),
                            factors=torch.from_numpy(values[ids.numpy()]), factor_names=FACTOR_NAMES,
                            factor_classes=torch.from_numpy(classes[ids.numpy()]), name="dsprites")


def load(split: str = "train", root=None, source: str = "auto", test_fraction: float = 0.1,
         seed: int = 0) -> LazyImageDataset:
    """dSprites from ``root``/``REPLAB_DATA`` when the real file is there (``source="auto"``), else generated.

    ``source="file"`` requires the real file; ``source="generator"`` always generates.
    """
    check_split(split)
    if source not in ("auto", "file", "generator"):
        raise ValueError(f"source: expected 'auto', 'file' or 'generator', got {source!r}")
    folder = resolve_root(root)
    if source == "file" or (source == "auto" and folder is not None and (folder / FILE).exists()):
        return load_file(require_file(root, FILE), split, test_fraction, seed)
    return generate(split, test_fraction, seed)
