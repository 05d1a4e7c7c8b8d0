"""CelebA from its aligned image folder (``img_align_celeba/*.jpg``): centre crop 150×150, resize to 64×64.

The split follows ``list_eval_partition.txt`` when the root holds it (partitions 0 and 1 train, 2 test; every
image must be listed there, with 0, 1 or 2), else a fixed seeded 90/10 partition of the sorted file names.
An image smaller than the 150×150 crop, a damaged JPEG or text file, an image the partition file does not list and
an empty split raise :class:`~replab.data.DatasetError`.

When the root holds ``list_attr_celeba.txt`` (the official annotation file: the image count, a line of the 40
attribute names, then one line per image, its file name and 40 values of 1 or -1), the dataset carries
``attributes`` (N×40, 1 present, 0 absent) and ``attribute_names``; the Kaggle copy ``list_attr_celeba.csv``
(a header ``image_id,<names>`` and one comma-separated row per image) is read the same way. Without either file the
images are unlabelled (targets are -1). CelebA has no class labels: ``labels`` is always None.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import ImageDataset, check_split, require_file, resolve_root, split_of
from ._checks import DatasetError, InvalidValues, reading

FOLDER = "img_align_celeba"
PARTITION = "list_eval_partition.txt"
ATTRIBUTES = ("list_attr_celeba.txt", "list_attr_celeba.csv")
CROP, SIZE = 150, 64


def read_image(path, crop: int = CROP, size: int = SIZE) -> np.ndarray:
    """One image as 3×size×size uint8: the centred crop×crop square, resized with antialiasing (PIL box filter)."""
    from PIL import Image

    with reading("celeba", path), Image.open(path) as im:
        w, h = im.size
        if w < crop or h < crop:
            raise InvalidValues(f"the image is {w}×{h} pixels, smaller than the {crop}×{crop} centre crop")
        im = im.convert("RGB")
        left, top = (w - crop) // 2, (h - crop) // 2
        im = im.crop((left, top, left + crop, top + crop)).resize((size, size), Image.Resampling.BOX)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)


def _lines(path) -> list[str]:
    return [line for line in Path(path).read_text().splitlines() if line.strip()]


def read_partition(path) -> dict[str, int]:
    """The partition (0 train, 1 validation, 2 test) of each file name in ``list_eval_partition.txt``."""
    with reading("celeba", path):
        parts = {}
        for number, line in enumerate(_lines(path), 1):
            fields = line.split()
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise InvalidValues(f"line {number}: expected '<file name> <0, 1 or 2>', got {line[:60]!r}")
            parts[fields[0]] = int(fields[1])
        return parts


def read_attributes(path) -> tuple[tuple[str, ...], dict[str, int], np.ndarray]:
    """``(names, row of each file name, table)`` of an attribute file; the table is int8 N×A with 1 and 0."""
    path = Path(path)
    with reading("celeba", path):
        return _parse_attributes(path, _lines(path))


def _parse_attributes(path: Path, lines: list[str]) -> tuple[tuple[str, ...], dict[str, int], np.ndarray]:
    if not lines:
        raise InvalidValues("the attribute file is empty")
    if path.suffix == ".csv":
        header = lines[0].split(",")
        names, rows, count = tuple(h.strip() for h in header[1:]), [line.split(",") for line in lines[1:]], None
    else:
        try:
            count = int(lines[0])
        except ValueError:
            raise InvalidValues(f"the first line must be the number of images, got {lines[0][:40]!r}") from None
        names, rows = tuple(lines[1].split()) if len(lines) > 1 else (), [line.split() for line in lines[2:]]
    if not names:
        raise InvalidValues("no attribute names")
    if count is not None and count != len(rows):
        raise InvalidValues(f"the header says {count} images, the file lists {len(rows)}")
    bad = next((i for i, r in enumerate(rows) if len(r) != len(names) + 1), None)
    if bad is not None:
        raise InvalidValues(f"the line of {rows[bad][0]!r} has {len(rows[bad]) - 1} values, expected "
                            f"{len(names)} (one per attribute)")
    cells = np.array([[v.strip() for v in r[1:]] for r in rows], dtype=str).reshape(len(rows), len(names))
    if not np.isin(cells, ("1", "-1")).all():
        raise InvalidValues("attribute values must be 1 or -1")
    index = {r[0].strip(): i for i, r in enumerate(rows)}
    return names, index, (cells == "1").astype(np.int8)


def _attributes_of(root, files) -> tuple[np.ndarray | None, tuple[str, ...] | None]:
    folder = resolve_root(root)
    path = next((folder / name for name in ATTRIBUTES if (folder / name).exists()), None)
    if path is None:
        return None, None
    names, index, table = read_attributes(path)
    missing = [f.name for f in files if f.name not in index]
    if missing:
        raise DatasetError("celeba", path, f"no attributes for {len(missing)} image(s), e.g. {missing[0]!r}")
    rows = np.array([index[f.name] for f in files], dtype=np.int64)
    return table[rows].astype(np.int64).reshape(len(files), len(names)), names


def _kept(files: list[Path], split: str, root, seed: int) -> np.ndarray:
    """Indices of ``split`` among ``files``: by the partition file when the root holds it, else seeded 90/10."""
    part_file = resolve_root(root) / PARTITION
    if split == "all":
        return np.arange(len(files))
    if not part_file.exists():
        return split_of("celeba", files[0].parent, len(files), split, 0.1, seed)
    parts = read_partition(part_file)
    missing = [f.name for f in files if f.name not in parts]
    if missing:
        raise DatasetError("celeba", part_file, f"{len(missing)} image(s) of {files[0].parent} have no partition, "
                                                f"e.g. {missing[0]!r}; every image must be listed with 0, 1 or 2")
    is_test = np.array([parts[f.name] == 2 for f in files])
    keep = np.flatnonzero(is_test if split == "test" else ~is_test)
    if not keep.size:
        raise DatasetError("celeba", part_file, f"the {split!r} split is empty: none of the {len(files)} images is "
                                                f"in partition {'2' if split == 'test' else '0 or 1'}")
    return keep


def load(split: str = "train", root=None, limit: int | None = None, seed: int = 0) -> ImageDataset:
    """CelebA images; ``limit`` keeps the first ``limit`` files (sorted by name) before splitting."""
    check_split(split)
    folder = require_file(root, FOLDER)
    files = sorted(folder.glob("*.jpg"))
    if not files:
        raise FileNotFoundError(f"no *.jpg images in {folder}")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"limit: expected a positive integer, got {limit!r}")
        files = files[:limit]
    kept = [files[i] for i in _kept(files, split, root, seed)]
    images = np.stack([read_image(f) for f in kept])
    attributes, names = _attributes_of(root, kept)
    return ImageDataset(images, name="celeba", attributes=attributes, attribute_names=names)
