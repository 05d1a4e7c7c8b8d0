"""The reduced SYMSOL set of Bonheme & Grześ (64×64 grey images of 5 solids, duplicates and marked shapes removed).

Accepted layouts in the data root, the first found wins:

* ``symsol_reduced.npz`` with ``images`` (N×64×64 or N×1×64×64 uint8) and ``labels`` (N integers 0..4);
* ``symsol_reduced/<class>/*.png``: one folder per shape, classes numbered in sorted folder-name order
  (``class_names`` lists them).

Split: a fixed seeded stratified 90/10 partition.
"""
from __future__ import annotations

import numpy as np

from ._base import ImageDataset, check_split, require_file, resolve_root, split_indices

NPZ = "symsol_reduced.npz"
FOLDER = "symsol_reduced"


def _read_folder(folder) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from PIL import Image

    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
    images, labels = [], []
    for k, name in enumerate(classes):
        for png in sorted((folder / name).glob("*.png")):
            with Image.open(png) as im:
                images.append(np.asarray(im.convert("L"), dtype=np.uint8))
            labels.append(k)
    if not images:
        raise FileNotFoundError(f"no <class>/*.png images in {folder}")
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def load(split: str = "train", root=None, seed: int = 0, test_fraction: float = 0.1) -> ImageDataset:
    check_split(split)
    folder = resolve_root(root)
    if folder is not None and (folder / FOLDER).is_dir() and not (folder / NPZ).exists():
        images, labels, classes = _read_folder(folder / FOLDER)
    else:
        with np.load(require_file(root, NPZ, FOLDER)) as f:
            images, labels = f["images"], f["labels"].astype(np.int64)
        classes = tuple(str(k) for k in range(int(labels.max()) + 1))
    if images.ndim == 3:
        images = images[:, None]
    idx = split_indices(len(labels), split, test_fraction, seed, stratify=labels)
    ds = ImageDataset(images[idx], labels=labels[idx], name="symsol")
    ds.class_names = classes
    return ds
