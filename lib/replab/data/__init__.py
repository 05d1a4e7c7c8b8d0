"""Offline datasets behind one call: ``replab.data.load(name, split="train", root=None, **kwargs)``.

Every dataset is an :class:`ImageDataset` (uint8 ``images`` N×C×H×W, int64 ``labels`` or None, float ``factors``
N×F with ``factor_names`` for factor datasets), a torch ``Dataset`` whose items are ``(image in [0, 1], target)``.

Shipped or generated (no files needed): ``mnist10k``, ``digits``, ``dsprites`` (generator unless the real file is
in the data root), ``affmnist``, ``symsol_like``. Real files, read from ``root`` or the ``REPLAB_DATA`` folder:
``mnist``, ``cifar10``, ``svhn``, ``celeba``, ``dsprites``, ``cars3d``, ``smallnorb``, ``symsol``.
See each module for the file layout it expects.

Every dataset has ``.subset(indices)``, ``.sample(n, seed)`` (datasets of the same type; lazy ones render on use) and
``.batches(batch_size)``. Pixels in real files are integers in 0..255 (any integer type) or floats in [0, 1], which
are scaled by 255 and rounded. A real file that is damaged, truncated or holds values outside its format (pixels
outside those ranges, labels outside the dataset's classes, an image missing from a split file, an empty split)
raises :class:`DatasetError`, a ``ValueError`` whose message names the dataset, the file and the problem; a missing
file raises ``FileNotFoundError``. The generated shape sets (``dsprites``, ``symsol_like``) render lazily by index: their
``.images`` is an indexable view that never builds the whole 3 GB tensor (see ``LazyImageDataset``).
"""
from __future__ import annotations

import importlib

from ._base import SPLITS, ImageDataset, LazyImageDataset, check_split
from ._checks import DatasetError
from . import stand_ins

__all__ = ["load", "names", "ImageDataset", "LazyImageDataset", "DatasetError", "SPLITS"]

# name -> module implementing load(split, root, **kwargs); imported on first use.
_MODULES = {
    "mnist10k": "mnist10k", "digits": "digits", "dsprites": "dsprites", "affmnist": "affmnist",
    "symsol_like": "symsol_like", "mnist": "mnist", "cifar10": "cifar10", "svhn": "svhn", "celeba": "celeba",
    "cars3d": "cars3d", "smallnorb": "smallnorb", "symsol": "symsol",
    "affnist": "affnist",
    "symsol_solids": "solids",
}
# datasets available without any data folder
OFFLINE = ("mnist10k", "digits", "dsprites", "affmnist", "symsol_like", "symsol_solids")


def names() -> list[str]:
    """Every dataset name ``load`` accepts."""
    return sorted(_MODULES)


def load(name: str, split: str = "train", root=None, **kwargs) -> ImageDataset:
    """Load dataset ``name``'s ``split`` ("train", "test" or "all"); ``root`` (or ``REPLAB_DATA``) holds real files.

    Extra keyword arguments go to the dataset's loader (e.g. ``seed`` for affmnist, ``source`` for dsprites).
    """
    if name not in _MODULES:
        raise ValueError(f"name: unknown dataset {name!r}; known datasets: {', '.join(names())}")
    check_split(split)
    stand_ins.refuse_in_load(name, root)
    module = importlib.import_module(f"{__name__}.{_MODULES[name]}")
    return module.load(split=split, root=root, **kwargs)
