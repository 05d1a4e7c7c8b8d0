"""MATLAB 5 ``.mat`` files, checked element by element before ``scipy.io.loadmat`` reads them.

scipy's reader trusts each element's type: one damaged byte in a type field can crash the interpreter instead of
raising. :func:`load_mat` first walks every data element, inside matrices and inside compressed elements too,
checking its type against MATLAB's list and its size against the bytes that remain.
"""
from __future__ import annotations

import mmap
import struct
import zlib
from pathlib import Path

from ._checks import InvalidValues

HEADER = 128
MI_MATRIX, MI_COMPRESSED = 14, 15
# miINT8 .. miUINT64 (8, 10, 11 are reserved), then matrix, compressed, UTF-8/16/32
MI_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 15, 16, 17, 18})
MAX_DEPTH = 64


def check_elements(buf, start: int, end: int, order: str, depth: int = 0) -> None:
    """Check the data elements in ``buf[start:end]``: known types, sizes within the bytes that remain."""
    if depth > MAX_DEPTH:
        raise InvalidValues(f"matrices nested more than {MAX_DEPTH} deep")
    pos = start
    while pos < end:
        if end - pos < 8:
            raise InvalidValues(f"the data element at byte {pos} is cut short")
        word, nbytes = struct.unpack_from(order + "II", buf, pos)
        if word >> 16:
            # a small data element: type and size in the first word, at most 4 bytes of data in the second
            if word >> 16 > 4 or word & 0xFFFF not in MI_TYPES:
                raise InvalidValues(f"the small data element at byte {pos} declares type {word & 0xFFFF} and "
                                    f"{word >> 16} bytes")
            pos += 8
            continue
        body = pos + 8
        if word not in MI_TYPES:
            raise InvalidValues(f"the data element at byte {pos} has the unknown type {word}")
        if nbytes > end - body:
            raise InvalidValues(f"the data element at byte {pos} declares {nbytes} bytes, {end - body} remain")
        if word == MI_COMPRESSED:
            inner = zlib.decompress(buf[body:body + nbytes])
            check_elements(inner, 0, len(inner), order, depth + 1)
            pos = body + nbytes          # compressed elements are not padded
            continue
        if word == MI_MATRIX:
            check_elements(buf, body, body + nbytes, order, depth + 1)
        pos = body + nbytes + (-nbytes % 8)


def load_mat(path) -> dict:
    """``scipy.io.loadmat(path)`` of a MATLAB 5 file whose every data element has been checked first."""
    from scipy.io import loadmat

    path = Path(path)
    with open(path, "rb") as f:
        if path.stat().st_size < HEADER:
            raise InvalidValues(f"shorter than the {HEADER}-byte header of a MATLAB 5 file")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            marker = bytes(buf[126:128])
            order = {b"IM": "<", b"MI": ">"}.get(marker)
            if order is None or struct.unpack_from(order + "H", buf, 124)[0] != 0x0100:
                raise InvalidValues("not a MATLAB 5 .mat file (version 4 and 7.3 files are not read)")
            check_elements(buf, HEADER, len(buf), order)
    return loadmat(path)
