"""The real MNIST files (IDX format, gzipped or not) from ``root`` or ``REPLAB_DATA``.

Images must be N×28×28 with values 0..255 (any IDX integer type; IDX floats must lie in [0, 1]), labels N
integers 0..9; anything else, or a damaged file, raises :class:`~replab.data.DatasetError`.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ._base import ImageDataset, check_split, require_file
from ._checks import InvalidValues, check_shape, declared_size, image_bytes, integers, nonempty, reading, same_count

FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# IDX type codes (third magic byte) -> big-endian numpy dtypes
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path, dataset: str = "mnist") -> np.ndarray:
    """An IDX array: two zero bytes, a type code, the number of dimensions, big-endian int32 sizes, the data."""
    path = Path(path)
    with reading(dataset, path):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
        if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
            raise InvalidValues(f"not an IDX file (magic bytes {raw[:4].hex()})")
        ndim, offset = raw[3], 4 + 4 * raw[3]
        if len(raw) < offset:
            raise InvalidValues(f"the header of {ndim} sizes is cut short ({len(raw)} bytes)")
        shape = tuple(int(d) for d in np.frombuffer(raw, ">i4", count=ndim, offset=4))
        dtype = np.dtype(_IDX_TYPES[raw[2]])
        declared_size(shape, dtype.itemsize, len(raw) - offset, "data")
        return np.frombuffer(raw, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def _one(split: str, root) -> tuple[np.ndarray, np.ndarray]:
    img_path, lab_path = (require_file(root, name, name + ".gz") for name in FILES[split])
    images, labels = read_idx(img_path), read_idx(lab_path)
    with reading("mnist", img_path):
        images = image_bytes(check_shape(images, (None, 28, 28), "images"))
        nonempty(len(images), "the image file")
    with reading("mnist", lab_path):
        labels = integers(check_shape(labels, (None,), "labels"), 0, 9)
        same_count(len(images), len(labels), "labels")
    return images, labels


def load(split: str = "train", root=None) -> ImageDataset:
    """MNIST's 60,000 training / 10,000 test digits (``"all"``: both, training first)."""
    check_split(split)
    parts = [_one(s, root) for s in (("train", "test") if split == "all" else (split,))]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return ImageDataset(images[:, None], labels=labels, name="mnist")
