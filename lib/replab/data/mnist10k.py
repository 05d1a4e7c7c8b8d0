"""MNIST-10k: 10,000 real MNIST digits shipped in the repository (``data/mnist10k.npz``, see ``data/README.md``).

The file holds ``images`` (10000×28×28 uint8), ``labels`` and ``is_test``, a fixed stratified split of
8,000 training and 2,000 test digits built by ``data/build_mnist10k.py``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import SHIPPED_DATA, ImageDataset, check_split, resolve_root

FILE = "mnist10k.npz"


def locate(root=None) -> Path:
    """``mnist10k.npz`` in the data root when it is there, else the copy shipped in the repository."""
    folder = resolve_root(root)
    for candidate in ([folder / FILE] if folder is not None else []) + [SHIPPED_DATA / FILE]:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{FILE} not found in {folder or SHIPPED_DATA}; rebuild it with data/build_mnist10k.py")


def arrays(split: str = "train", root=None) -> tuple[np.ndarray, np.ndarray]:
    """(images N×28×28 uint8, labels N int64) of ``split``."""
    check_split(split)
    with np.load(locate(root)) as f:
        images, labels, is_test = f["images"], f["labels"].astype(np.int64), f["is_test"]
    keep = slice(None) if split == "all" else (is_test if split == "test" else ~is_test)
    return images[keep], labels[keep]


def load(split: str = "train", root=None) -> ImageDataset:
    images, labels = arrays(split, root)
    return ImageDataset(images[:, None], labels=labels, name="mnist10k")
