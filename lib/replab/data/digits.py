"""scikit-learn's bundled 8×8 handwritten digits (1,797 images, values 0..16 scaled to 0..255)."""
from __future__ import annotations

import numpy as np

from ._base import ImageDataset, split_indices


def load(split: str = "train", root=None, test_fraction: float = 0.2) -> ImageDataset:
    """A fixed stratified split (seed 0, ``test_fraction`` of each class in the test set)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 0..16 -> 0..255 by rounding v * 255 / 16, so 16 maps to 255 and every level stays distinct.
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    idx = split_indices(len(labels), split, test_fraction, seed=0, stratify=labels)
    return ImageDataset(images[idx], labels=labels[idx], name="digits")
