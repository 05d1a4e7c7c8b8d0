"""CIFAR-10 from its python pickles (``cifar-10-batches-py/data_batch_1..5``, ``test_batch``).

A batch is a dict with ``data`` (N×3072 values 0..255, rows of 1024 red, 1024 green, 1024 blue) and ``labels``
(N integers 0..9). The files are unpickled by a restricted unpickler that builds only what the official files
hold: dicts, lists, bytes, strings, numbers and numpy arrays (through numpy's array reconstruction helpers). Any
other global a pickle names (``os.system``, ``builtins.eval``, any class) is refused before it is called, with a
:class:`~replab.data.DatasetError`, as is a damaged file or a value out of range.
"""
from __future__ import annotations

import codecs
import io
import pickle
import pickletools
from pathlib import Path

import numpy as np

from ._base import ImageDataset, check_split, require_file
from ._checks import InvalidValues, check_shape, image_bytes, integers, nonempty, reading, same_count

FOLDER = "cifar-10-batches-py"
# Opcodes no CIFAR-10 batch needs, refused before unpickling: objects that come from outside find_class's allow-list
# (persistent ids, the extension registry, out-of-band buffers) or are built by calling a class.
REFUSED_OPCODES = frozenset({"PERSID", "BINPERSID", "EXT1", "EXT2", "EXT4", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX",
                             "NEXT_BUFFER", "READONLY_BUFFER"})
FILES = {"train": tuple(f"data_batch_{k}" for k in range(1, 6)), "test": ("test_batch",)}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _dtype(*args):
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise InvalidValues("the pickle holds an array of Python objects, which a CIFAR-10 batch never does")
    return dtype


def _latin1(text, encoding="utf-8"):
    # Python 3 writes bytes at pickle protocols 0-2 as _codecs.encode(text, "latin1"); no other codec is needed
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise InvalidValues(f"the pickle calls _codecs.encode with {encoding!r}, which a CIFAR-10 batch never does")
    return codecs.encode(text, encoding)


def _allowed() -> dict[tuple[str, str], object]:
    reconstruct = np.zeros(1).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    table = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): _dtype, ("_codecs", "encode"): _latin1,
             ("builtins", "bytes"): bytes, ("__builtin__", "bytes"): bytes}
    # the official files were written by numpy 1 under Python 2 (numpy.core); numpy 2 writes numpy._core
    for package in ("numpy.core", "numpy._core"):
        table[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        table[(f"{package}.numeric", "_frombuffer")] = frombuffer
    return table


class BatchUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy's array helpers, ``bytes`` and a latin-1 ``_codecs.encode``.

    Use it through :func:`unpickle_batch`, which also refuses the opcodes in ``REFUSED_OPCODES``."""

    _ALLOWED = _allowed()

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise InvalidValues(f"refused to unpickle {module}.{name}: a CIFAR-10 batch holds only dicts, lists, "
                                f"bytes, strings, numbers and numpy arrays") from None



def unpickle_batch(raw: bytes):
    """The object pickled in ``raw``, built by :class:`BatchUnpickler` after every opcode has been read once
    without running anything (which also checks each length against the bytes that remain)."""
    for opcode, _, position in pickletools.genops(raw):
        if opcode.name in REFUSED_OPCODES:
            raise InvalidValues(f"refused the pickle opcode {opcode.name} at byte {position}: a CIFAR-10 batch "
                                f"never uses it")
    return BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()


def _field(batch: dict, name: str):
    """``batch[b"data"]`` as the official files key it, or ``batch["data"]`` as a Python 3 copy may."""
    for key in (name.encode(), name):
        if key in batch:
            return batch[key]
    raise InvalidValues(f"the batch has no {name!r} entry (it holds: {', '.join(sorted(map(repr, batch)))})")


def read_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """(images N×3×32×32 uint8, labels) of one pickled batch (rows are 1024 red, 1024 green, 1024 blue)."""
    with reading("cifar10", path):
        batch = unpickle_batch(Path(path).read_bytes())
        if not isinstance(batch, dict):
            raise InvalidValues(f"expected a dict with 'data' and 'labels', got a {type(batch).__name__}")
        data = image_bytes(check_shape(_field(batch, "data"), (None, 3072), "data"), "data")
        nonempty(len(data), "the batch")
        labels = integers(check_shape(_field(batch, "labels"), (None,), "labels"), 0, 9)
        same_count(len(data), len(labels), "labels")
    return data.reshape(-1, 3, 32, 32), labels


def load(split: str = "train", root=None) -> ImageDataset:
    """The 50,000 training / 10,000 test images (``"all"``: both, training first); root holds the folder."""
    check_split(split)
    names = FILES["train"] + FILES["test"] if split == "all" else FILES[split]
    parts = [read_batch(require_file(root, f"{FOLDER}/{name}", name)) for name in names]
    return ImageDataset(np.concatenate([p[0] for p in parts]), labels=np.concatenate([p[1] for p in parts]),
                        name="cifar10")
