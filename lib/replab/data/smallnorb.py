"""smallNORB (LeCun et al., 2004) from its binary matrix files, the first camera's image resized to 64×64.

Files (training / testing): ``smallnorb-5x46789x9x18x6x2x96x96-training-{dat,cat,info}.mat`` and
``smallnorb-5x01235x9x18x6x2x96x96-testing-{dat,cat,info}.mat``. Each starts with a little-endian int32 magic
(0x1E3D4C55 bytes, 0x1E3D4C54 int32, ...), the number of dimensions, then max(ndim, 3) int32 sizes, then the data.
``dat`` is N×2×96×96 uint8 (stereo pairs), ``cat`` the N categories, ``info`` N×4 (instance, elevation 0..8,
azimuth 0, 2, ..., 34, lighting 0..5). Factors: (category, instance, elevation, azimuth, lighting) as stored;
``factor_classes`` has azimuth / 2. Images are resized by area averaging.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import ImageDataset, check_split, require_file, resize_area

PREFIX = {"train": "smallnorb-5x46789x9x18x6x2x96x96-training", "test": "smallnorb-5x01235x9x18x6x2x96x96-testing"}
FACTOR_NAMES = ("category", "instance", "elevation", "azimuth", "lighting")
MAGIC = {0x1E3D4C51: "<f4", 0x1E3D4C53: "<f8", 0x1E3D4C54: "<i4", 0x1E3D4C55: "u1", 0x1E3D4C56: "<i2"}
SIZE = 64


def read_matrix(path) -> np.ndarray:
    """One NORB binary matrix file as a numpy array."""
    raw = Path(path).read_bytes()
    magic, ndim = (int(x) for x in np.frombuffer(raw, "<i4", count=2))
    if magic not in MAGIC:
        raise ValueError(f"{Path(path).name}: unknown NORB magic number {magic:#x}")
    n_dims_stored = max(ndim, 3)
    shape = tuple(int(d) for d in np.frombuffer(raw, "<i4", count=n_dims_stored, offset=8))[:ndim]
    data = np.frombuffer(raw, MAGIC[magic], offset=8 + 4 * n_dims_stored)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{Path(path).name}: header says shape {shape} but holds {data.size} values")
    return data.reshape(shape)


def _one(split: str, root) -> tuple[np.ndarray, np.ndarray]:
    dat, cat, info = (read_matrix(require_file(root, f"{PREFIX[split]}-{kind}.mat")) for kind in ("dat", "cat", "info"))
    images = resize_area(dat[:, :1], SIZE).numpy()
    factors = np.column_stack([cat.reshape(-1), info.reshape(len(cat), -1)[:, :4]]).astype(np.int64)
    return images, factors


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
