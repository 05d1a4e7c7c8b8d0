"""Cars3D (Reed et al., 2015) from its ``cars/car_XXX_mesh.mat`` files, resized to 64×64.

Each file holds ``im`` of shape 128×128×3×24×4: height, width, RGB, 24 azimuths, 4 elevations (the layout
disentanglement_lib reads with ``einsum("abcde->deabc")``). Examples are ordered by file (sorted name), then
elevation, then azimuth; factors are (elevation, azimuth, object) as grid indices, labels the object index.
Images are resized by area averaging (exact 2×2 means). Split: a fixed seeded 90/10 partition. A damaged file,
an ``im`` of another shape, values outside 0..255 (floats outside [0, 1]) or an empty split raise
:class:`~replab.data.DatasetError`.
"""
from __future__ import annotations

import numpy as np

from ._base import ImageDataset, check_split, require_file, resize_area, split_of
from ._checks import check_shape, entry, image_bytes, nonempty, reading
from ._matfile import load_mat

FACTOR_NAMES = ("elevation", "azimuth", "object")
SIZE = 64


def read_mesh(path) -> np.ndarray:
    """(elevations, azimuths, 3, H, W) uint8 images of one car."""
    with reading("cars3d", path):
        im = check_shape(entry(load_mat(path), "im"), ("H", "W", 3, "azimuths", "elevations"), "im")
        nonempty(im.size, "im")
        return image_bytes(np.ascontiguousarray(np.transpose(im, (4, 3, 2, 0, 1))), "im")


def load(split: str = "train", root=None, seed: int = 0, test_fraction: float = 0.1) -> ImageDataset:
    check_split(split)
    folder = require_file(root, "cars", ".")
    files = sorted(folder.glob("car_*_mesh.mat"))
    if not files:
        raise FileNotFoundError(f"no car_*_mesh.mat files in {folder.resolve()} (expected under <root>/cars)")
    images, factors = [], []
    for obj, path in enumerate(files):
        mesh = read_mesh(path)
        n_el, n_az = mesh.shape[:2]
        images.append(resize_area(mesh.reshape(-1, *mesh.shape[2:]), SIZE))
        el, az = np.meshgrid(np.arange(n_el), np.arange(n_az), indexing="ij")
        factors.append(np.column_stack([el.ravel(), az.ravel(), np.full(el.size, obj)]))
    table = np.concatenate(factors)
    idx = split_of("cars3d", folder, len(table), split, test_fraction, seed)
    return ImageDataset(np.concatenate(images)[idx], labels=table[idx, 2], factors=table[idx].astype(np.float32),
                        factor_names=FACTOR_NAMES, factor_classes=table[idx], name="cars3d")
