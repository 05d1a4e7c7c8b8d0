"""CelebA from its aligned image folder (``img_align_celeba/*.jpg``): centre crop 150×150, resize to 64×64.

The split follows ``list_eval_partition.txt`` when the root holds it (partitions 0 and 1 train, 2 test),
else a fixed seeded 90/10 partition of the sorted file names. Images are unlabelled (targets are -1).
"""
from __future__ import annotations

import numpy as np

from ._base import ImageDataset, check_split, require_file, resolve_root, split_indices

FOLDER = "img_align_celeba"
PARTITION = "list_eval_partition.txt"
CROP, SIZE = 150, 64


def read_image(path, crop: int = CROP, size: int = SIZE) -> np.ndarray:
    """One image as 3×size×size uint8: the centred crop×crop square, resized with antialiasing (PIL box filter)."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        left, top = (w - crop) // 2, (h - crop) // 2
        im = im.crop((left, top, left + crop, top + crop)).resize((size, size), Image.Resampling.BOX)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)


def load(split: str = "train", root=None, limit: int | None = None, seed: int = 0) -> ImageDataset:
    """CelebA images; ``limit`` keeps the first ``limit`` files (sorted by name) before splitting."""
    check_split(split)
    folder = require_file(root, FOLDER)
    files = sorted(folder.glob("*.jpg"))
    if not files:
        raise FileNotFoundError(f"no *.jpg images in {folder}")
    if limit is not None:
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit: expected a positive integer, got {limit!r}")
        files = files[:limit]
    part_file = resolve_root(root) / PARTITION
    if split == "all":
        keep = np.arange(len(files))
    elif part_file.exists():
        parts = dict(line.split() for line in part_file.read_text().splitlines() if line.strip())
        is_test = np.array([parts.get(f.name, "0") == "2" for f in files])
        keep = np.flatnonzero(is_test if split == "test" else ~is_test)
    else:
        keep = split_indices(len(files), split, 0.1, seed)
    images = np.stack([read_image(files[i]) for i in keep]) if len(keep) else np.zeros((0, 3, SIZE, SIZE), np.uint8)
    return ImageDataset(images, name="celeba")
