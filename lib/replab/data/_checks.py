"""The one error a damaged or invalid data file raises, and the value checks every real-format loader shares.

A loader reads each file inside ``with reading(dataset, path):``. Whatever goes wrong in there, a parser's own
exception (``EOFError``, ``BadZipFile``, an ``OSError`` of a truncated JPEG, ...) or one of the checks below,
leaves as a :class:`DatasetError` that names the dataset, the file and what was wrong. A missing file stays a
``FileNotFoundError``: it is absent, not damaged.

The checks never repair: an 8-bit image value outside 0..255 is refused instead of wrapped or clipped, a label
outside its range is refused instead of kept or folded.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence

import numpy as np

__all__ = ["DatasetError", "InvalidValues", "reading", "image_bytes", "integers", "check_shape", "entry",
           "nonempty", "same_count", "declared_size", "value_range"]


class DatasetError(ValueError):
    """A data file that cannot be used: ``dataset``, ``path`` (the file or folder) and ``problem``, in words."""

    def __init__(self, dataset: str, path, problem: str):
        self.dataset, self.path, self.problem = dataset, str(path), problem
        super().__init__(f"{dataset}: {self.path}: {problem}")

    def __reduce__(self):
        # the default would call __init__ with the message alone (e.g. when a test worker sends it back)
        return type(self), (self.dataset, self.path, self.problem)


class InvalidValues(ValueError):
    """What the checks raise; :func:`reading` adds the dataset and the file and raises a :class:`DatasetError`."""


@contextlib.contextmanager
def reading(dataset: str, path) -> Iterator[None]:
    """Turn every failure inside the block into a :class:`DatasetError` naming ``dataset`` and ``path``."""
    try:
        yield
    except (DatasetError, FileNotFoundError):
        raise
    except InvalidValues as err:
        raise DatasetError(dataset, path, str(err)) from err
    except (PermissionError, IsADirectoryError) as err:
        raise DatasetError(dataset, path, f"cannot be read ({type(err).__name__}: {err})") from err
    # A damaged file makes each parser fail its own way (EOFError, BadZipFile, UnpicklingError, OSError,
    # struct.error, MemoryError from a size its header invents, ...): all of them mean "this file is unusable".
    except Exception as err:
        raise DatasetError(dataset, path, f"damaged, truncated or not in the expected format "
                                          f"({type(err).__name__}: {err})") from err


def value_range(a: np.ndarray) -> str:
    """'from <min> to <max>' of a non-empty array, for messages."""
    return f"from {a.min()} to {a.max()}"


def image_bytes(array, what: str = "images") -> np.ndarray:
    """``array`` as uint8: integers must lie in 0..255 (kept as they are), floats in [0, 1] (times 255, rounded).

    Anything else (integers outside 0..255, floats outside [0, 1], NaN, booleans, strings, objects) is refused.
    """
    a = np.asarray(array)
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind in "iu":
        if a.size and (int(a.min()) < 0 or int(a.max()) > 255):
            raise InvalidValues(f"{what}: {a.dtype} values {value_range(a)}; 8-bit images hold 0..255 (values outside "
                                f"are refused, not wrapped or clipped)")
        return a.astype(np.uint8)
    if a.dtype.kind == "f":
        if a.size and not np.isfinite(a).all():
            raise InvalidValues(f"{what}: NaN or infinite values")
        if a.size and (float(a.min()) < 0 or float(a.max()) > 1):
            raise InvalidValues(f"{what}: {a.dtype} values {value_range(a)}; float images must lie in [0, 1] (they are "
                                f"scaled by 255), integer images in 0..255")
        return np.rint(a.astype(np.float64) * 255).astype(np.uint8)
    raise InvalidValues(f"{what}: unsupported dtype {a.dtype}; expected integers in 0..255 or floats in [0, 1]")


def integers(values, lo: int, hi: int, what: str = "labels") -> np.ndarray:
    """``values`` as int64, each a whole number in ``lo..hi`` (floats holding whole numbers are accepted)."""
    a = np.asarray(values)
    if a.dtype.kind == "f":
        if a.size and not (np.isfinite(a).all() and (a == np.rint(a)).all()):
            raise InvalidValues(f"{what}: expected whole numbers in {lo}..{hi}, got fractional, NaN or infinite "
                                f"values")
    elif a.dtype.kind not in "biu":
        raise InvalidValues(f"{what}: expected integers in {lo}..{hi}, got dtype {a.dtype}")
    bad = np.flatnonzero((a < lo) | (a > hi))
    if bad.size:
        i = np.unravel_index(bad[0], a.shape)
        raise InvalidValues(f"{what}: {a[i]} at position {tuple(int(k) for k in i) if a.ndim > 1 else int(bad[0])} "
                            f"is outside {lo}..{hi} ({bad.size} value(s) out of range)")
    return a.astype(np.int64)


def check_shape(array, pattern: Sequence[int | str | None], what: str) -> np.ndarray:
    """``array`` when its shape matches ``pattern`` (None, shown as N, or a name matches any size), else an error
    naming both."""
    a = np.asarray(array)
    if a.ndim != len(pattern) or any(isinstance(p, int) and s != p for s, p in zip(a.shape, pattern)):
        want = "(" + ", ".join("N" if p is None else str(p) for p in pattern) + ")"
        raise InvalidValues(f"{what}: expected shape {want}, got {a.shape}")
    return a


def entry(mapping, key: str, what: str = "the file"):
    """``mapping[key]`` (a dict, an ``np.load`` archive, a .mat), or an error listing what ``what`` holds."""
    try:
        return mapping[key]
    except KeyError:
        held = sorted(str(k) for k in (mapping.files if hasattr(mapping, "files") else mapping.keys())
                      if not str(k).startswith("__"))
        raise InvalidValues(f"{what} has no {key!r} entry (it holds: {', '.join(held) or 'nothing'})") from None


def nonempty(n: int, what: str) -> int:
    """``n`` when positive, else an error: an empty file or split is never returned as an empty dataset."""
    if n < 1:
        raise InvalidValues(f"{what} is empty")
    return n


def same_count(n_images: int, n_other: int, what: str) -> None:
    """One ``what`` (a label, a row) per image."""
    if n_images != n_other:
        raise InvalidValues(f"{what}: {n_other} for {n_images} images (expected one per image)")


def declared_size(shape: Sequence[int], itemsize: int, available: int, what: str) -> int:
    """The number of values a header's ``shape`` declares, checked against the ``available`` bytes."""
    if any(int(d) < 0 for d in shape):
        raise InvalidValues(f"{what}: the header declares a negative size, shape {tuple(shape)}")
    count = math.prod(int(d) for d in shape)
    if count * itemsize != available:
        raise InvalidValues(f"{what}: the header declares shape {tuple(int(d) for d in shape)} ({count * itemsize} "
                            f"bytes of data) but the file holds {available} bytes (truncated or damaged)")
    return count
