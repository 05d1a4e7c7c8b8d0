"""SVHN (cropped digits) from ``train_32x32.mat`` / ``test_32x32.mat``; label 10 stands for the digit 0.

``X`` must be 32×32×3×N with values 0..255 (or floats in [0, 1]) and ``y`` N labels in 1..10, as the official
files hold them (a 0 is read as the digit 0 too); anything else, or a damaged file, raises
:class:`~replab.data.DatasetError`.
"""
from __future__ import annotations

import numpy as np

from ._base import ImageDataset, check_split, require_file
from ._checks import check_shape, entry, image_bytes, integers, nonempty, reading, same_count
from ._matfile import load_mat

FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def read_mat(path) -> tuple[np.ndarray, np.ndarray]:
    """(images N×3×32×32 uint8, labels 0..9): ``X`` is stored 32×32×3×N and ``y`` uses 10 for zero."""
    with reading("svhn", path):
        mat = load_mat(path)
        x = check_shape(entry(mat, "X"), (32, 32, 3, None), "X")
        images = image_bytes(np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1))), "X")
        nonempty(len(images), "X")
        y = np.asarray(entry(mat, "y"))
        labels = integers(check_shape(y.reshape(-1) if y.ndim == 2 and 1 in y.shape else y, (None,), "y"),
                          0, 10, "y") % 10
        same_count(len(images), len(labels), "y")
    return images, labels


def load(split: str = "train", root=None) -> ImageDataset:
    check_split(split)
    parts = [read_mat(require_file(root, FILES[s])) for s in (("train", "test") if split == "all" else (split,))]
    return ImageDataset(np.concatenate([p[0] for p in parts]), labels=np.concatenate([p[1] for p in parts]),
                        name="svhn")
