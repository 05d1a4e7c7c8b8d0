"""The real MNIST files (IDX format, gzipped or not) from ``root`` or ``REPLAB_DATA``."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ._base import ImageDataset, check_split, require_file

FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# IDX type codes (third magic byte) -> big-endian numpy dtypes
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """An IDX array: two zero bytes, a type code, the number of dimensions, big-endian int32 sizes, the data."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path.name}: not an IDX file (magic bytes {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    data = np.frombuffer(raw, dtype, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path.name}: header says shape {shape} but holds {data.size} values")
    return data.reshape(shape).astype(dtype.newbyteorder("="))


def _one(split: str, root) -> tuple[np.ndarray, np.ndarray]:
    img_name, lab_name = FILES[split]
    images = read_idx(require_file(root, img_name, img_name + ".gz"))
    labels = read_idx(require_file(root, lab_name, lab_name + ".gz"))
    return images, labels


def load(split: str = "train", root=None) -> ImageDataset:
    """MNIST's 60,000 training / 10,000 test digits (``"all"``: both, training first)."""
    check_split(split)
    parts = [_one(s, root) for s in (("train", "test") if split == "all" else (split,))]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts]).astype(np.int64)
    return ImageDataset(images[:, None], labels=labels, name="mnist")
