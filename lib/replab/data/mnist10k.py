"""MNIST-10k: 10,000 real MNIST digits shipped in the repository (``data/mnist10k.npz``, see ``data/README.md``).

The file holds ``images`` (10000×28×28 uint8), ``labels`` and ``is_test``, a fixed stratified split of
8,000 training and 2,000 test digits built by ``data/build_mnist10k.py``. A copy in the data root is checked as
the real files are (28×28 images of 0..255, labels 0..9, a boolean ``is_test`` per image, both splits non-empty):
anything else raises :class:`~replab.data.DatasetError`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import SHIPPED_DATA, ImageDataset, check_split, resolve_root
from ._checks import InvalidValues, check_shape, entry, image_bytes, integers, nonempty, reading, same_count

FILE = "mnist10k.npz"


def locate(root=None) -> Path:
    """``mnist10k.npz`` in the data root when it is there, else the copy shipped in the repository."""
    folder = resolve_root(root)
    for candidate in ([folder / FILE] if folder is not None else []) + [SHIPPED_DATA / FILE]:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{FILE} not found in {folder or SHIPPED_DATA}; rebuild it with data/build_mnist10k.py")


def read(path, dataset: str = "mnist10k") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images N×28×28 uint8, labels N int64, is_test N bool) of an ``mnist10k.npz`` file read for ``dataset``."""
    with reading(dataset, path), np.load(path) as f:
        images = image_bytes(check_shape(entry(f, "images"), (None, 28, 28), "images"))
        nonempty(len(images), "images")
        labels = integers(check_shape(entry(f, "labels"), (None,), "labels"), 0, 9)
        same_count(len(images), len(labels), "labels")
        is_test = integers(check_shape(entry(f, "is_test"), (None,), "is_test"), 0, 1, "is_test").astype(bool)
        same_count(len(images), len(is_test), "is_test")
        if is_test.all() or not is_test.any():
            raise InvalidValues(f"is_test: the {'train' if is_test.all() else 'test'} split is empty")
    return images, labels, is_test


def arrays(split: str = "train", root=None) -> tuple[np.ndarray, np.ndarray]:
    """(images N×28×28 uint8, labels N int64) of ``split``."""
    check_split(split)
    images, labels, is_test = read(locate(root))
    keep = slice(None) if split == "all" else (is_test if split == "test" else ~is_test)
    return images[keep], labels[keep]


def load(split: str = "train", root=None) -> ImageDataset:
    images, labels = arrays(split, root)
    return ImageDataset(images[:, None], labels=labels, name="mnist10k")
