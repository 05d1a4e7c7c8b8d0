"""scikit-learn's bundled 8×8 handwritten digits (1,797 images, values 0..16 scaled to 0..255).

The file ``sklearn/datasets/data/digits.csv.gz`` (64 pixel values then the label per row) is read directly,
which is what ``sklearn.datasets.load_digits`` returns, without importing scikit-learn.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from ._base import ImageDataset, split_indices


@functools.lru_cache(maxsize=1)
def arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images 1797×8×8 with values 0..16, labels)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the digits dataset ships with scikit-learn, which is not installed")
    table = np.loadtxt(Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz", delimiter=",")
    return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)


def load(split: str = "train", root=None, test_fraction: float = 0.2) -> ImageDataset:
    """A fixed stratified split (seed 0, ``test_fraction`` of each class in the test set)."""
    raw, labels = arrays()
    # 0..16 -> 0..255 by rounding v * 255 / 16, so 16 maps to 255 and every level stays distinct.
    images = np.rint(raw * (255.0 / 16.0)).astype(np.uint8)[:, None]
    idx = split_indices(len(labels), split, test_fraction, seed=0, stratify=labels)
    return ImageDataset(images[idx], labels=labels[idx], name="digits")
