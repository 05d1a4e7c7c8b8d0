"""The real affNIST (Tieleman, 2013): MNIST digits in 40×40 images, centred or affine-transformed.

The publisher's MATLAB 5 files, as ``replab data fetch affnist`` places them under the data root:

* centred (``transformed=False``): ``affnist/just_centered/training_and_validation.mat`` (60,000 digits) and
  ``affnist/just_centered/test.mat`` (10,000): each MNIST digit with an edge of 6 background pixels;
* transformed (``transformed=True``): ``affnist/transformed/training_and_validation_batches/1.mat`` … ``32.mat``
  and ``affnist/transformed/test_batches/1.mat`` … ``32.mat``: batch k holds the k-th random affine
  transformation of every digit (60,000 and 10,000 a batch). ``batches`` picks some of them (all by default: the
  32 training batches hold 1.9 million images, 3 GB as bytes).

Each file holds a struct ``affNISTdata`` with ``image`` (1600×N uint8, one image a column, its 40 rows one after
the other, as every published reader takes it: column k is ``image[:, k].reshape(40, 40)``), ``label_int`` (N
digits 0..9) and ``label_one_of_n``. A missing file raises ``FileNotFoundError`` naming it and the command that
fetches it; a damaged file, another shape, a pixel outside 0..255 or a label outside 0..9 raise
:class:`~replab.data.DatasetError`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ._base import ImageDataset, check_split, resolve_root
from ._checks import InvalidValues, check_shape, entry, image_bytes, integers, nonempty, reading, same_count
from ._matfile import load_mat

FOLDER = "affnist"
CENTRED = {"train": "just_centered/training_and_validation.mat", "test": "just_centered/test.mat"}
TRANSFORMED = {"train": "transformed/training_and_validation_batches", "test": "transformed/test_batches"}
SIZE = 40
FETCH = "replab data fetch affnist"


def read_mat(path) -> tuple[np.ndarray, np.ndarray]:
    """(images N×40×40 uint8, labels 0..9) of one affNIST file."""
    with reading("affnist", path):
        data = entry(load_mat(path), "affNISTdata")
        if data.dtype.names is None or data.size != 1:
            raise InvalidValues(f"affNISTdata: expected a 1×1 struct, got a {data.dtype} array of shape "
                                f"{data.shape}")
        struct = data.reshape(-1)[0]
        fields = {name: struct[name] for name in data.dtype.names}
        image = check_shape(entry(fields, "image", "affNISTdata"), (SIZE * SIZE, None), "affNISTdata.image")
        images = image_bytes(np.ascontiguousarray(image.T).reshape(-1, SIZE, SIZE), "affNISTdata.image")
        nonempty(len(images), "affNISTdata.image")
        labels = np.asarray(entry(fields, "label_int", "affNISTdata"))
        if labels.ndim == 2 and 1 in labels.shape:
            labels = labels.reshape(-1)
        labels = integers(check_shape(labels, (None,), "affNISTdata.label_int"), 0, 9, "affNISTdata.label_int")
        same_count(len(images), len(labels), "affNISTdata.label_int")
    return images, labels


def _missing(path: Path, what: str) -> FileNotFoundError:
    return FileNotFoundError(f"{path} not found ({what}); `{FETCH}` downloads the publisher's files there")


def _folder(root) -> Path:
    folder = resolve_root(root)
    if folder is None:
        raise FileNotFoundError(f"affNIST is real data and no data folder was given: pass root=... or set "
                                f"REPLAB_DATA to the folder `{FETCH}` fills")
    return folder / FOLDER


def _batch_number(path: Path) -> int:
    m = re.fullmatch(r"(\d+)\.mat", path.name)
    return int(m.group(1)) if m else -1


def _files(folder: Path, split: str, transformed: bool, batches: Sequence[int] | None) -> list[Path]:
    if not transformed:
        if batches is not None:
            raise ValueError("batches: only the transformed set comes in batches (pass transformed=True)")
        path = folder / CENTRED[split]
        if not path.exists():
            raise _missing(path, f"the centred {split} set")
        return [path]
    where = folder / TRANSFORMED[split]
    if batches is None:
        files = sorted((p for p in where.glob("*.mat") if _batch_number(p) > 0), key=_batch_number)
        if not files:
            raise _missing(where / "1.mat", f"the transformed {split} batches 1.mat … 32.mat")
        return files
    if isinstance(batches, (int, str)) or not all(isinstance(b, (int, np.integer)) and b > 0 for b in batches):
        raise ValueError(f"batches: expected a sequence of batch numbers 1, 2, …, got {batches!r}")
    files = [where / f"{int(b)}.mat" for b in batches]
    for path in files:
        if not path.exists():
            raise _missing(path, f"transformed {split} batch {path.stem}")
    return files


def load(split: str = "train", root=None, transformed: bool = False,
         batches: Sequence[int] | None = None) -> ImageDataset:
    """affNIST's training+validation (60,000 digits a set) or test (10,000) images, centred or transformed
    (``"all"``: training first, then test); labels are the digits."""
    check_split(split)
    if not isinstance(transformed, bool):
        raise ValueError(f"transformed: expected True or False, got {transformed!r}")
    folder = _folder(root)
    files = [p for s in (("train", "test") if split == "all" else (split,))
             for p in _files(folder, s, transformed, batches)]
    parts = [read_mat(p) for p in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return ImageDataset(images[:, None], labels=labels, name="affnist")
