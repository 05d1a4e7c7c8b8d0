"""SVHN (cropped digits) from ``train_32x32.mat`` / ``test_32x32.mat``; label 10 stands for the digit 0."""
from __future__ import annotations

import numpy as np

from ._base import ImageDataset, check_split, require_file

FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def read_mat(path) -> tuple[np.ndarray, np.ndarray]:
    """(images N×3×32×32 uint8, labels 0..9): ``X`` is stored 32×32×3×N and ``y`` uses 10 for zero."""
    from scipy.io import loadmat

    mat = loadmat(path)
    images = np.ascontiguousarray(np.transpose(mat["X"], (3, 2, 0, 1))).astype(np.uint8)
    labels = mat["y"].reshape(-1).astype(np.int64) % 10
    return images, labels


def load(split: str = "train", root=None) -> ImageDataset:
    check_split(split)
    parts = [read_mat(require_file(root, FILES[s])) for s in (("train", "test") if split == "all" else (split,))]
    return ImageDataset(np.concatenate([p[0] for p in parts]), labels=np.concatenate([p[1] for p in parts]),
                        name="svhn")
