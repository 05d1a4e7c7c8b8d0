"""The one dataset type every loader returns, plus the helpers loaders share (splits, roots, file checks).

:class:`ImageDataset` holds uint8 images (N×C×H×W) in memory with integer labels, a float factor table and/or a
table of binary attributes (CelebA's 40).
:class:`LazyImageDataset` has the same interface but renders (or decodes) images on demand from a function of
the example ids, so a generated set of 737,280 images streams batch by batch without holding 3 GB.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ._checks import DatasetError, InvalidValues, image_bytes

__all__ = ["ImageDataset", "LazyImageDataset", "LazyImages", "split_indices", "split_of", "check_split", "resolve_root", "require_file", "SPLITS",
           "SHIPPED_DATA", "MAX_MATERIALISE", "resize_area"]

SPLITS = ("train", "test", "all")
# The repository's data/ folder (data shipped with the code, e.g. mnist10k.npz).
SHIPPED_DATA = Path(__file__).resolve().parents[3] / "data"
# A lazy dataset larger than this many images refuses to build `.images` implicitly (see LazyImageDataset).
MAX_MATERIALISE = 32_768


def _as_images(images) -> torch.Tensor:
    """uint8 images; other dtypes must hold integers in 0..255 or floats in [0, 1] (see ``image_bytes``)."""
    if isinstance(images, torch.Tensor):
        if images.dtype == torch.uint8:
            return images
        images = images.detach().cpu()
        images = (images.double() if images.is_floating_point() else images).numpy()
    return torch.from_numpy(np.ascontiguousarray(image_bytes(images)))


def _as_tensor(x, dtype: torch.dtype) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    return t.to(dtype)


class ImageDataset(Dataset):
    """Images with labels and/or factors of variation; a torch ``Dataset``.

    Attributes: ``images`` (uint8, N×C×H×W), ``labels`` (int64, N, or None), ``factors`` (float32, N×F, or None),
    ``factor_names`` (tuple of F names), ``factor_classes`` (int64, N×F grid indices, or None), ``attributes``
    (int64, N×A of 0/1, or None: binary annotations such as CelebA's, several true at once), ``attribute_names``
    (tuple of A names), ``name``. ``dataset[i]`` is ``(image as float32 in [0, 1], target)`` where the target is
    the factor row when the dataset has factors, else the label, else the attribute row, else ``-1`` (unlabelled
    images, e.g. CelebA without its attribute file).
    """

    def __init__(self, images, labels=None, factors=None, factor_names: Sequence[str] | None = None,
                 factor_classes=None, name: str = "", attributes=None, attribute_names: Sequence[str] | None = None):
        self.name = name
        if images is None:
            raise ValueError("images: expected a uint8 array of shape (N, C, H, W), got None")
        self._images = _as_images(images)
        if self._images.ndim != 4:
            raise ValueError(f"images: expected a uint8 array of shape (N, C, H, W), got shape "
                             f"{tuple(self._images.shape)}")
        self._set_targets(labels, factors, factor_names, factor_classes, attributes, attribute_names)

    def _set_targets(self, labels, factors, factor_names, factor_classes, attributes=None,
                     attribute_names=None) -> None:
        n = len(self)
        self.labels = None if labels is None else _as_tensor(labels, torch.int64).reshape(-1)
        self.factors = None if factors is None else _as_tensor(factors, torch.float32)
        self.factor_classes = None if factor_classes is None else _as_tensor(factor_classes, torch.int64)
        if self.labels is not None and self.labels.shape[0] != n:
            raise ValueError(f"labels: expected {n} labels (one per image), got {self.labels.shape[0]}")
        for what, t in (("factors", self.factors), ("factor_classes", self.factor_classes)):
            if t is not None and (t.ndim != 2 or t.shape[0] != n):
                raise ValueError(f"{what}: expected shape ({n}, n_factors), got {tuple(t.shape)}")
        if self.factors is not None:
            names = tuple(factor_names or ())
            if len(names) != self.factors.shape[1]:
                raise ValueError(f"factor_names: expected {self.factors.shape[1]} names, got {names!r}")
            self.factor_names = names
        else:
            self.factor_names = ()
        self._set_attributes(attributes, attribute_names)

    def _set_attributes(self, attributes, attribute_names) -> None:
        self.attributes = None if attributes is None else _as_tensor(attributes, torch.int64)
        self.attribute_names = ()
        if self.attributes is None:
            return
        n = len(self)
        if self.attributes.ndim != 2 or self.attributes.shape[0] != n:
            raise ValueError(f"attributes: expected shape ({n}, n_attributes), got {tuple(self.attributes.shape)}")
        if self.attributes.numel() and not bool(((self.attributes == 0) | (self.attributes == 1)).all()):
            raise ValueError("attributes: expected 0/1 values (absent/present)")
        names = tuple(attribute_names or ())
        if len(names) != self.attributes.shape[1]:
            raise ValueError(f"attribute_names: expected {self.attributes.shape[1]} names, got {names!r}")
        self.attribute_names = names

    # -- the Dataset protocol -------------------------------------------------------------------------------
    @property
    def images(self) -> torch.Tensor:
        return self._images

    def __len__(self) -> int:
        return int(self._images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self._images.shape[1:])

    def _images_at(self, idx: torch.Tensor) -> torch.Tensor:
        return self._images[idx]

    def _target_at(self, idx):
        if self.factors is not None:
            return self.factors[idx]
        if self.labels is not None:
            return self.labels[idx]
        if self.attributes is not None:
            return self.attributes[idx]
        return torch.full(idx.shape, -1, dtype=torch.int64) if isinstance(idx, torch.Tensor) else torch.tensor(-1)

    def __getitem__(self, i):
        if isinstance(i, torch.Tensor) and i.ndim == 0 and not i.is_floating_point():
            i = int(i)
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {type(i).__name__}; use .subset(indices) for many")
        n = len(self)
        if not -n <= int(i) < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} examples")
        i = int(i) % n
        idx = torch.tensor([i])
        return self._images_at(idx)[0].float() / 255.0, self._target_at(i)

    def __repr__(self) -> str:
        parts = [f"n={len(self)}", f"image_shape={self.image_shape}"]
        if self.labels is not None:
            parts.append(f"n_classes={int(self.labels.max()) + 1 if len(self) else 0}")
        if self.factor_names:
            parts.append(f"factors={self.factor_names}")
        if self.attribute_names:
            parts.append(f"n_attributes={len(self.attribute_names)}")
        return f"{type(self).__name__}({self.name!r}, {', '.join(parts)})"

    # -- selections ---------------------------------------------------------------------------------------------
    def _check_indices(self, indices) -> torch.Tensor:
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64).reshape(-1)
        n = len(self)
        if idx.numel() and (int(idx.min()) < -n or int(idx.max()) >= n):
            raise ValueError(f"indices: must lie in [0, {n}), got values from {int(idx.min())} to {int(idx.max())}")
        return idx % max(n, 1)

    def _take(self, idx: torch.Tensor) -> dict:
        return dict(labels=None if self.labels is None else self.labels[idx],
                    factors=None if self.factors is None else self.factors[idx],
                    factor_names=self.factor_names or None,
                    factor_classes=None if self.factor_classes is None else self.factor_classes[idx],
                    attributes=None if self.attributes is None else self.attributes[idx],
                    attribute_names=self.attribute_names or None, name=self.name)

    def subset(self, indices) -> "ImageDataset":
        """A dataset of the examples at ``indices``, in that order."""
        idx = self._check_indices(indices)
        return ImageDataset(self._images_at(idx), **self._take(idx))

    def sample(self, n: int, seed: int = 0) -> "ImageDataset":
        """``n`` examples drawn without replacement, the same ones for the same ``seed``."""
        if not isinstance(n, (int, np.integer)) or not 0 < n <= len(self):
            raise ValueError(f"n: expected an integer in [1, {len(self)}], got {n!r}")
        perm = np.random.default_rng(seed).permutation(len(self))[:n]
        return self.subset(np.sort(perm))

    def batches(self, batch_size: int = 256, shuffle: bool = False, seed: int = 0
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(images as float32 in [0, 1], targets)`` batches over the whole set (streams lazy sets)."""
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        for start in range(0, len(self), batch_size):
            idx = torch.from_numpy(order[start:start + batch_size]).long()
            yield self._images_at(idx).float() / 255.0, self._target_at(idx)


class LazyImageDataset(ImageDataset):
    """An :class:`ImageDataset` whose images are produced on demand by ``render(ids) -> uint8 (B, C, H, W)``.

    ``ids`` are the dataset's own example ids (e.g. dSprites' flat grid indices); ``dataset[i]`` and ``.batches()``
    render only what they return; ``.subset()`` and ``.sample()`` return lazy datasets whose labels and factors are
    there at once and whose images are rendered when first used. ``.images`` is a uint8 tensor of every image
    when there are at most ``MAX_MATERIALISE``; above that it is a :class:`LazyImages` view that has ``.shape``,
    ``.dtype`` and ``len()`` and renders what it is indexed with (``images[idx]``), but refuses to become one
    tensor (use ``.sample(n, seed)``, ``.subset(indices)`` or ``.batches(batch_size)``).
    """

    def __init__(self, render: Callable[[torch.Tensor], torch.Tensor], ids, image_shape: tuple[int, int, int],
                 labels=None, factors=None, factor_names=None, factor_classes=None, name: str = "", attributes=None,
                 attribute_names=None):
        self._render = render
        self.ids = _as_tensor(ids, torch.int64).reshape(-1)
        self._shape = tuple(int(s) for s in image_shape)
        self._images = None
        self.name = name
        self._set_targets(labels, factors, factor_names, factor_classes, attributes, attribute_names)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self._shape

    def _images_at(self, idx: torch.Tensor) -> torch.Tensor:
        out = self._render(self.ids[idx])
        if out.dtype != torch.uint8 or tuple(out.shape) != (idx.numel(), *self._shape):
            raise RuntimeError(f"renderer returned {out.dtype} {tuple(out.shape)}, expected uint8 "
                               f"{(idx.numel(), *self._shape)}")
        return out

    @property
    def images(self):
        if len(self) > MAX_MATERIALISE:
            return LazyImages(self)
        if self._images is None:
            self._images = self._images_at(torch.arange(len(self)))
        return self._images

    def subset(self, indices) -> "LazyImageDataset":
        """The examples at ``indices``, still lazy: labels and factors at once, images rendered on first use of
        ``.images`` (then kept) or per item; a large subset keeps the view of :class:`LazyImages`."""
        idx = self._check_indices(indices)
        return LazyImageDataset(self._render, self.ids[idx], self._shape, **self._take(idx))

    def materialise(self) -> ImageDataset:
        """An :class:`ImageDataset` holding every image (refused above ``MAX_MATERIALISE`` images)."""
        if len(self) > MAX_MATERIALISE:
            raise ValueError(self.too_large_message())
        idx = torch.arange(len(self))
        return ImageDataset(self.images, **self._take(idx))

    def too_large_message(self) -> str:
        n = len(self)
        gb = n * int(np.prod(self._shape)) / 1e9
        return (f"{self.name or 'this dataset'} has {n:,} images ({gb:.1f} GB as uint8) rendered lazily; its "
                f".images is a view that only renders what it is indexed with (images[idx]) and is never built "
                f"whole above {MAX_MATERIALISE:,} images. Use .sample(n, seed) or .subset(indices) for an "
                f"in-memory selection, or .batches(batch_size) to stream them all")


class LazyImages:
    """The images of a large :class:`LazyImageDataset`: ``shape``, ``dtype``, ``len()`` and indexing only.

    ``images[i]``, ``images[a:b]``, ``images[index_tensor]`` or ``images[bool_mask]`` render those images (at most
    ``MAX_MATERIALISE`` at a time); anything that needs the whole tensor raises with the ways to get one.
    """

    def __init__(self, dataset: LazyImageDataset):
        self._ds = dataset
        self.dtype = torch.uint8
        self.ndim = 4
        self.shape = torch.Size((len(dataset), *dataset.image_shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            return self[[int(key)]][0][rest] if rest else self[[int(key)]][0]
        if isinstance(key, slice):
            idx = torch.arange(len(self))[key]
        else:
            idx = torch.as_tensor(np.asarray(key))
            if idx.dtype == torch.bool:
                idx = torch.nonzero(idx).reshape(-1)
        if idx.numel() > MAX_MATERIALISE:
            raise ValueError(self._ds.too_large_message())
        out = self._ds._images_at(self._ds._check_indices(idx))
        return out[(slice(None),) + rest] if rest else out

    def __array__(self, *args, **kwargs):
        raise ValueError(self._ds.too_large_message())

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(f".images.{name} is not available: {self._ds.too_large_message()}")

    def __repr__(self) -> str:
        return f"LazyImages(shape={tuple(self.shape)}, dtype=torch.uint8)"


def split_indices(n: int, split: str, test_fraction: float = 0.2, seed: int = 0,
                  stratify=None) -> np.ndarray:
    """Sorted indices of ``split`` in a fixed seeded train/test partition of ``n`` examples.

    With ``stratify`` (one label per example) each class contributes ``round(test_fraction * n_class)`` test
    examples; otherwise ``round(test_fraction * n)`` are drawn from all examples. An empty split is an error
    (``InvalidValues``, a ``ValueError``; a loader's ``reading`` names the file it came from).
    """
    check_split(split)
    if not (isinstance(test_fraction, (int, float, np.floating)) and 0 < test_fraction < 1):
        raise ValueError(f"test_fraction: expected a number strictly between 0 and 1, got {test_fraction!r}")
    if n < 1:
        raise InvalidValues("no examples to split (the data is empty)")
    if split == "all":
        return np.arange(n)
    rng = np.random.default_rng(seed)
    is_test = np.zeros(n, dtype=bool)
    if stratify is None:
        is_test[rng.permutation(n)[:int(round(test_fraction * n))]] = True
    else:
        y = np.asarray(stratify)
        for k in np.unique(y):
            members = np.flatnonzero(y == k)
            is_test[rng.permutation(members)[:int(round(test_fraction * len(members)))]] = True
    keep = np.flatnonzero(is_test if split == "test" else ~is_test)
    if not keep.size:
        raise InvalidValues(f"the {split!r} split is empty: test_fraction={test_fraction} of {n} examples"
                            f"{' (per class)' if stratify is not None else ''} puts "
                            f"{'none' if split == 'test' else 'all'} of them in the test split")
    return keep


def split_of(dataset: str, source, n: int, split: str, test_fraction: float, seed: int = 0,
             stratify=None) -> np.ndarray:
    """:func:`split_indices` of the ``n`` examples read from ``source``: an empty split is a
    :class:`~replab.data.DatasetError` naming the dataset and that file or folder."""
    try:
        return split_indices(n, split, test_fraction, seed, stratify)
    except InvalidValues as err:
        raise DatasetError(dataset, source, str(err)) from err


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    return split


def resolve_root(root=None) -> Path | None:
    """``root`` when given, else the ``REPLAB_DATA`` environment variable, else None."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("REPLAB_DATA", "")
    return Path(env).expanduser() if env else None


def require_file(root, *names: str) -> Path:
    """The first of ``names`` that exists under the data root; else ``FileNotFoundError`` naming file and folder."""
    folder = resolve_root(root)
    if folder is None:
        raise FileNotFoundError(f"{names[0]} is a real data file and no data folder was given: pass root=... "
                                f"or set REPLAB_DATA to the folder that holds it")
    for name in names:
        if (folder / name).exists():
            return folder / name
    alts = f" (or {', '.join(names[1:])})" if len(names) > 1 else ""
    raise FileNotFoundError(f"{names[0]}{alts} not found in {folder}")


def resize_area(images, size: int) -> torch.Tensor:
    """Resize uint8 (N, C, H, W) images to ``size``×``size`` by area averaging (exact 2×2 means for 128→64)."""
    t = _as_tensor(images, torch.uint8)
    if t.shape[-2:] == (size, size):
        return t
    out = torch.nn.functional.interpolate(t.float(), size=(size, size), mode="area")
    return out.round().clamp(0, 255).to(torch.uint8)
