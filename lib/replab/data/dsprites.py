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

from ._base import LazyImageDataset, check_split, require_file, resolve_root, split_indices, split_of
from ._checks import InvalidValues, check_shape, entry, integers, nonempty, reading, value_range
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
    """Stream a binary (N, H, W) array out of the npz, bit-packed along W (3 GB -> 377 MB); returns it and W.

    Every value must be 0 or 1 (any numeric dtype); the header's shape is checked against the member's size
    before anything is allocated."""
    with zipfile.ZipFile(path) as z:
        info = entry({i.filename: i for i in z.infolist()}, member, "the archive")
        with z.open(info) as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            if fortran or len(shape) != 3 or dtype.hasobject:
                raise InvalidValues(f"{member} must be a C-ordered (N, H, W) numeric array, got shape {shape}, "
                                    f"dtype {dtype}")
            n, h, w = shape
            row_bytes = h * w * dtype.itemsize
            if n * row_bytes > info.file_size:
                raise InvalidValues(f"{member}: the header declares shape {shape} ({n * row_bytes} bytes), more "
                                    f"than the {info.file_size} bytes the archive holds for it")
            out = np.empty((n, h, (w + 7) // 8), dtype=np.uint8)
            for start in range(0, n, chunk):
                rows = min(chunk, n - start)
                raw = f.read(rows * row_bytes)
                if len(raw) != rows * row_bytes:
                    raise InvalidValues(f"{member} ends inside image {start + len(raw) // max(row_bytes, 1)} of {n}")
                block = np.frombuffer(raw, dtype=dtype).reshape(rows, h, w)
                ink = block != 0
                if not (block[ink] == 1).all():
                    raise InvalidValues(f"{member}: dSprites images are binary (0 and 1), got values "
                                        f"{value_range(block[ink & (block != 1)])}")
                out[start:start + rows] = np.packbits(ink, axis=-1)
    return out, w


def load_file(path, split: str = "all", test_fraction: float = 0.1, seed: int = 0) -> LazyImageDataset:
    """The real dSprites file (``imgs``, ``latents_values``, ``latents_classes``), decoded lazily by index.

    ``latents_classes`` must be N×6 grid indices within the grid's sizes, ``latents_values`` N×6 finite numbers,
    ``imgs`` N×H×W of 0 and 1; else (or when the file is damaged) :class:`~replab.data.DatasetError`."""
    path = Path(path)
    with reading("dsprites", path):
        with np.load(path) as f:
            values, classes = entry(f, "latents_values"), entry(f, "latents_classes")
        packed, width = _read_npy_member_packed(path)
        n, h = nonempty(len(packed), "imgs"), packed.shape[1]
        classes = check_shape(classes, (n, 6), "latents_classes")
        classes = np.column_stack([integers(classes[:, k], 0, size - 1, f"latents_classes[:, {k}] ({name})")
                                   for k, (size, name) in enumerate(zip(GRID.sizes, FACTOR_NAMES))])
        values = check_shape(values, (n, 6), "latents_values")
        if values.dtype.kind not in "iuf" or not np.isfinite(values).all():
            raise InvalidValues(f"latents_values: expected finite numbers, got dtype {values.dtype}"
                                f"{' with NaN or infinite values' if values.dtype.kind == 'f' else ''}")

    ids = torch.from_numpy(split_of("dsprites", path, n, split, test_fraction, seed))

    def decode(ids: torch.Tensor) -> torch.Tensor:
        bits = np.unpackbits(packed[ids.numpy()], axis=-1)[..., :width]
        return torch.from_numpy(bits * np.uint8(255))[:, None]

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
