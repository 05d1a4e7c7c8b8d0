"""The reduced SYMSOL set of Bonheme & Grześ (64×64 grey images of 5 solids, duplicates and marked shapes removed).

Accepted layouts in the data root, the first found wins:

* ``symsol_reduced.npz`` with ``images`` (N×64×64, N×1×64×64 or N×64×64×1; uint8, or floats in [0, 1] as the
  reference code's ``symsol.npy``, which are rounded to bytes) and ``labels`` (N integers 0..4);
* ``symsol_reduced/<class>/*.png``: one folder per shape, classes numbered in sorted folder-name order
  (``class_names`` lists them);
* the reference code's own layout, which carries no labels (its dataset config declares no factors):
  ``symsol_reduced/symsol.npy`` (N×64×64×1 floats in [0, 1], the array ``vae_ld.data.symsol`` caches), else
  the flat ``symsol_reduced/*.png`` of its archive (sorted by name). ``labels`` is then None.

Split: a fixed seeded 90/10 partition, stratified by shape when labels are known.
"""
from __future__ import annotations

import numpy as np

from ._base import ImageDataset, check_split, require_file, resolve_root, split_indices

NPZ = "symsol_reduced.npz"
FOLDER = "symsol_reduced"
REFERENCE_NPY = "symsol.npy"


def _read_png(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.uint8)


def _read_folder(folder) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
    """Class sub-folders of PNGs (labelled), else the flat PNGs of the reference archive (unlabelled)."""
    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
    images, labels = [], []
    for k, name in enumerate(classes):
        for png in sorted((folder / name).glob("*.png")):
            images.append(_read_png(png))
            labels.append(k)
    if images:
        return np.stack(images), np.asarray(labels, dtype=np.int64), classes
    flat = sorted(folder.glob("*.png"))
    if not flat:
        raise FileNotFoundError(f"no <class>/*.png or *.png images in {folder}")
    return np.stack([_read_png(p) for p in flat]), None, ()


def _as_bytes(images: np.ndarray) -> np.ndarray:
    """N×1×H×W uint8 from N×H×W, N×1×H×W or N×H×W×1, bytes or floats in [0, 1]."""
    if images.ndim == 4 and images.shape[-1] == 1 and images.shape[1] != 1:
        images = images[..., 0]
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"symsol images: expected N×64×64 grey images, got shape {images.shape}")
    if np.issubdtype(images.dtype, np.floating):
        if images.min() < 0 or images.max() > 1:
            raise ValueError("symsol images: float images must lie in [0, 1]")
        images = np.rint(images * 255)
    return images.astype(np.uint8)


def load(split: str = "train", root=None, seed: int = 0, test_fraction: float = 0.1) -> ImageDataset:
    check_split(split)
    folder = resolve_root(root)
    if folder is not None and (folder / FOLDER).is_dir() and not (folder / NPZ).exists():
        if (folder / FOLDER / REFERENCE_NPY).exists():
            images, labels, classes = np.load(folder / FOLDER / REFERENCE_NPY), None, ()
        else:
            images, labels, classes = _read_folder(folder / FOLDER)
    else:
        with np.load(require_file(root, NPZ, FOLDER)) as f:
            images, labels = f["images"], f["labels"].astype(np.int64)
        classes = tuple(str(k) for k in range(int(labels.max()) + 1))
    images = _as_bytes(images)
    idx = split_indices(len(images), split, test_fraction, seed, stratify=labels)
    ds = ImageDataset(images[idx], labels=None if labels is None else labels[idx], name="symsol")
    ds.class_names = classes
    return ds
