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

Images must be 64×64 (8-bit PNGs; arrays of integers in 0..255 or floats in [0, 1]), labels 0..4, one per image;
anything else, a damaged file or an empty split raises :class:`~replab.data.DatasetError`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import ImageDataset, check_split, require_file, resolve_root, split_of
from ._checks import InvalidValues, check_shape, entry, image_bytes, integers, nonempty, reading, same_count

NPZ = "symsol_reduced.npz"
FOLDER = "symsol_reduced"
REFERENCE_NPY = "symsol.npy"
SIZE = 64
N_CLASSES = 5


def _read_png(path) -> np.ndarray:
    from PIL import Image

    with reading("symsol", path), Image.open(path) as im:
        if im.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
            raise InvalidValues(f"a PNG of mode {im.mode}; expected 8-bit grey or colour")
        return check_shape(np.asarray(im.convert("L"), dtype=np.uint8), (SIZE, SIZE), "the image")


def _read_folder(folder) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
    """Class sub-folders of PNGs (labelled), else the flat PNGs of the reference archive (unlabelled)."""
    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
    images, labels = [], []
    for k, name in enumerate(classes):
        for png in sorted((folder / name).glob("*.png")):
            images.append(_read_png(png))
            labels.append(k)
    if images:
        return np.stack(images)[:, None], np.asarray(labels, dtype=np.int64), classes
    flat = sorted(folder.glob("*.png"))
    if not flat:
        raise FileNotFoundError(f"no <class>/*.png or *.png images in {folder}")
    return np.stack([_read_png(p) for p in flat])[:, None], None, ()


def _as_bytes(images) -> np.ndarray:
    """N×1×64×64 uint8 from N×64×64, N×1×64×64 or N×64×64×1, integers in 0..255 or floats in [0, 1]."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1 and images.shape[1] != 1:
        images = images[..., 0]
    if images.ndim == 3:
        images = images[:, None]
    images = image_bytes(check_shape(images, (None, 1, SIZE, SIZE), "images"))
    nonempty(len(images), "images")
    return images


def _read(root) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...], Path]:
    """(images, labels or None, class names, the file or folder they came from) of the first layout found."""
    folder = resolve_root(root)
    if folder is not None and (folder / FOLDER).is_dir() and not (folder / NPZ).exists():
        npy = folder / FOLDER / REFERENCE_NPY
        if npy.exists():
            with reading("symsol", npy):
                return _as_bytes(np.load(npy)), None, (), npy
        return *_read_folder(folder / FOLDER), folder / FOLDER
    path = require_file(root, NPZ, FOLDER)
    with reading("symsol", path), np.load(path) as f:
        images = _as_bytes(entry(f, "images"))
        labels = integers(check_shape(entry(f, "labels"), (None,), "labels"), 0, N_CLASSES - 1)
        same_count(len(images), len(labels), "labels")
    return images, labels, tuple(str(k) for k in range(int(labels.max()) + 1)), path


def load(split: str = "train", root=None, seed: int = 0, test_fraction: float = 0.1) -> ImageDataset:
    check_split(split)
    images, labels, classes, source = _read(root)
    idx = split_of("symsol", source, len(images), split, test_fraction, seed, stratify=labels)
    ds = ImageDataset(images[idx], labels=None if labels is None else labels[idx], name="symsol")
    ds.class_names = classes
    return ds
