"""CIFAR-10 from its python pickles (``cifar-10-batches-py/data_batch_1..5``, ``test_batch``)."""
from __future__ import annotations

import pickle

import numpy as np

from ._base import ImageDataset, check_split, require_file

FOLDER = "cifar-10-batches-py"
FILES = {"train": tuple(f"data_batch_{k}" for k in range(1, 6)), "test": ("test_batch",)}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def read_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """(images N×3×32×32 uint8, labels) of one pickled batch (rows are 1024 red, 1024 green, 1024 blue)."""
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    return data.reshape(-1, 3, 32, 32), labels


def load(split: str = "train", root=None) -> ImageDataset:
    """The 50,000 training / 10,000 test images (``"all"``: both, training first); root holds the folder."""
    check_split(split)
    names = FILES["train"] + FILES["test"] if split == "all" else FILES[split]
    parts = [read_batch(require_file(root, f"{FOLDER}/{name}", name)) for name in names]
    return ImageDataset(np.concatenate([p[0] for p in parts]), labels=np.concatenate([p[1] for p in parts]),
                        name="cifar10")
