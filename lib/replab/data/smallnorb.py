"""smallNORB (LeCun et al., 2004) from its binary matrix files, the first camera's image resized to 64×64.

Files (training / testing): ``smallnorb-5x46789x9x18x6x2x96x96-training-{dat,cat,info}.mat`` and
``smallnorb-5x01235x9x18x6x2x96x96-testing-{dat,cat,info}.mat``. Each starts with a little-endian int32 magic
(0x1E3D4C55 bytes, 0x1E3D4C54 int32, ...), the number of dimensions, then max(ndim, 3) int32 sizes, then the data.
``dat`` is N×2×96×96 uint8 (stereo pairs), ``cat`` the N categories, ``info`` N×4 (instance, elevation 0..8,
azimuth 0, 2, ..., 34, lighting 0..5). Factors: (category, instance, elevation, azimuth, lighting) as stored;
``factor_classes`` has azimuth / 2. Images are resized by area averaging. A damaged file, a shape other than the
above, pixel values outside 0..255, a category outside 0..4 or an info value outside its range (instance 0..9,
elevation 0..8, azimuth an even number 0..34, lighting 0..5) raise :class:`~replab.data.DatasetError`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import ImageDataset, check_split, require_file, resize_area
from ._checks import InvalidValues, check_shape, declared_size, image_bytes, integers, nonempty, reading, same_count

PREFIX = {"train": "smallnorb-5x46789x9x18x6x2x96x96-training", "test": "smallnorb-5x01235x9x18x6x2x96x96-testing"}
FACTOR_NAMES = ("category", "instance", "elevation", "azimuth", "lighting")
MAGIC = {0x1E3D4C51: "<f4", 0x1E3D4C53: "<f8", 0x1E3D4C54: "<i4", 0x1E3D4C55: "u1", 0x1E3D4C56: "<i2"}
SIZE = 64
# the columns of an info file: name, largest value, step
INFO = (("instance", 9, 1), ("elevation", 8, 1), ("azimuth", 34, 2), ("lighting", 5, 1))


def read_matrix(path) -> np.ndarray:
    """One NORB binary matrix file as a numpy array."""
    with reading("smallnorb", path):
        raw = Path(path).read_bytes()
        if len(raw) < 8:
            raise InvalidValues(f"the header is cut short ({len(raw)} bytes)")
        magic, ndim = (int(x) for x in np.frombuffer(raw, "<i4", count=2))
        if magic not in MAGIC:
            raise InvalidValues(f"unknown NORB magic number {magic:#x}")
        if not 1 <= ndim <= 8:
            raise InvalidValues(f"the header declares {ndim} dimensions")
        n_dims_stored = max(ndim, 3)
        offset = 8 + 4 * n_dims_stored
        if len(raw) < offset:
            raise InvalidValues(f"the header of {n_dims_stored} sizes is cut short ({len(raw)} bytes)")
        shape = tuple(int(d) for d in np.frombuffer(raw, "<i4", count=n_dims_stored, offset=8))[:ndim]
        dtype = np.dtype(MAGIC[magic])
        declared_size(shape, dtype.itemsize, len(raw) - offset, "data")
        return np.frombuffer(raw, dtype, offset=offset).reshape(shape)


def _one(split: str, root) -> tuple[np.ndarray, np.ndarray]:
    paths = [require_file(root, f"{PREFIX[split]}-{kind}.mat") for kind in ("dat", "cat", "info")]
    dat, cat, info = (read_matrix(p) for p in paths)
    with reading("smallnorb", paths[0]):
        dat = image_bytes(check_shape(dat, (None, 2, 96, 96), "dat"), "dat")
        nonempty(len(dat), "dat")
    with reading("smallnorb", paths[1]):
        cat = integers(check_shape(cat, (None,), "cat"), 0, 4, "cat (category)")
        same_count(len(dat), len(cat), "categories")
    with reading("smallnorb", paths[2]):
        info = check_shape(info, (len(dat), 4), "info")
        columns = []
        for k, (name, top, step) in enumerate(INFO):
            column = integers(info[:, k], 0, top, f"info[:, {k}] ({name})")
            if (column % step).any():
                raise InvalidValues(f"info[:, {k}] ({name}): {column[column % step != 0][0]} is not a multiple of "
                                    f"{step}")
            columns.append(column)
    images = resize_area(dat[:, :1], SIZE).numpy()
    return images, np.column_stack([cat] + columns)


def load(split: str = "train", root=None) -> ImageDataset:
    """The 24,300 training / 24,300 test images (``"all"``: both, training first); labels are the categories."""
    check_split(split)
    parts = [_one(s, root) for s in (("train", "test") if split == "all" else (split,))]
    images = np.concatenate([p[0] for p in parts])
    factors = np.concatenate([p[1] for p in parts])
    classes = factors.copy()
    classes[:, 3] //= 2
    return ImageDataset(images, labels=factors[:, 0], factors=factors.astype(np.float32), factor_names=FACTOR_NAMES,
                        factor_classes=classes, name="smallnorb")
