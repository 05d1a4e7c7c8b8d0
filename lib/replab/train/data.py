"""The data of a run: loading, the targets a classifier or a conditional objective learns, each member's data
(:class:`MemberData`), the seeded batch of a data-dependent initialisation (:func:`data_init`), batches on the
device, and augmentation.

Batch t of a run is a pure function of (seed, t): epoch e = t // (N // B) visits a permutation of the examples
drawn from (seed, e), without replacement. A stacked group draws every member's batch in one indexing
operation: each member has its own permutation (its own data order), and members sharing the same examples share
one copy of them on the device.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .. import noise as _noise
from ..runtime import generator as _generator
from . import tasks as _tasks
from .config import SYNTHETIC, TrainConfig

__all__ = ["load_data", "classifier_targets", "conditional_targets", "data_fingerprint", "stream_seed", "Batches",
           "augment", "MemberData", "data_init"]

# images moved to an accelerator when they take less than this (the rest stay in host memory)
DEVICE_BYTES = 4 * 2**30


def stream_seed(seed: int, index: int, stream: str) -> int:
    """A 63-bit seed for item ``index`` of the named ``stream`` of a run seeded ``seed``."""
    digest = hashlib.blake2b(f"{seed}:{stream}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def _labels_of(dataset, label_column: int | None = None, multi_label: bool = False):
    """A dataset's labels, or with ``label_column`` one column of its factor classes when it has them; for a
    multi-label classifier its binary attributes."""
    if multi_label:
        return getattr(dataset, "attributes", None)
    labels, factors = getattr(dataset, "labels", None), getattr(dataset, "factor_classes", None)
    if factors is not None and (labels is None or label_column is not None):
        return factors
    return labels


def _unpack(data, label_column: int | None = None, multi_label: bool = False):
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    if hasattr(data, "images"):
        return data.images, _labels_of(data, label_column, multi_label)
    if isinstance(data, (torch.Tensor, np.ndarray)):
        return data, None
    raise ValueError("data must be an image tensor, an (images, labels) pair, or a dataset with .images/.labels, "
                     f"got {type(data).__name__}")


def data_fingerprint(data, multi_label: bool = False) -> str | None:
    """A hash of in-memory data (its images and labels), part of the key of a run trained on it."""
    if data is None:
        return None
    images, labels = _unpack(data, multi_label=multi_label)
    h = hashlib.sha256()
    if not isinstance(images, (torch.Tensor, np.ndarray)):
        # a lazily rendered set: its name, size and a sample of images stand for the whole
        n = len(images)
        h.update(f"{getattr(data, 'name', '')}:{tuple(images.shape)}".encode())
        images = images[torch.unique(torch.linspace(0, n - 1, min(n, 64)).long())]
    for arr in (images, labels):
        if arr is not None:
            t = torch.as_tensor(np.asarray(arr)) if not isinstance(arr, torch.Tensor) else arr
            t = t.detach().cpu().contiguous()
            h.update(str((tuple(t.shape), str(t.dtype))).encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:20]


def _check_images(images) -> None:
    """Images a model can learn from: uint8 (0–255), or finite floats in [0, 1]."""
    if not isinstance(images, torch.Tensor) or images.dtype == torch.uint8:
        return
    if not images.is_floating_point():
        raise ValueError(f"data: images must be uint8 (0-255) or floating point in [0, 1], got {images.dtype}")
    if images.numel() == 0:
        raise ValueError("data: the image set is empty")
    if not bool(torch.isfinite(images).all()):
        raise ValueError("data: the images hold NaN or infinite values")
    lo, hi = float(images.min()), float(images.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"data: floating-point images must lie in [0, 1] (uint8 for 0-255), got values in "
                         f"[{lo:g}, {hi:g}]")


def load_data(config: TrainConfig, data, input_shape):
    """(images, labels) of ``config``'s run: images a uint8 or float tensor, or an indexable view of a lazily
    rendered set; ``data`` (in memory) replaces ``replab.data.load`` when given."""
    if data is None and config.dataset == SYNTHETIC:
        n = config.n or 256
        g = _generator(stream_seed(config.subset_seed, 0, SYNTHETIC))
        images = (torch.rand((n, *input_shape), generator=g) < 0.3).to(torch.uint8) * 255
        labels = torch.randint(0, 10, (n,), generator=g)
        return images, labels
    if data is None:
        from .. import data as _data  # imported here so the engine also runs on in-memory data alone
        dataset = _data.load(config.dataset, split=config.split)
        if config.n is not None:
            if config.n > len(dataset):
                raise ValueError(f"n={config.n} is larger than the dataset ({len(dataset)} examples)")
            dataset = dataset.sample(config.n, seed=config.subset_seed)  # the examples other pages draw too
        images, labels = _unpack(dataset, config.label_column, config.multi_label)
    else:
        images, labels = _unpack(data, config.label_column, config.multi_label)
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(images)
        if labels is not None and not isinstance(labels, torch.Tensor):
            labels = torch.as_tensor(np.asarray(labels))
        if config.n is not None:
            if config.n > len(images):
                raise ValueError(f"n={config.n} is larger than the dataset ({len(images)} examples)")
            idx = torch.randperm(len(images), generator=_generator(config.subset_seed))[:config.n].sort().values
            images, labels = images[idx], (labels[idx] if labels is not None else None)
    if tuple(images.shape[1:]) != tuple(input_shape):
        raise ValueError(f"data: images of shape {tuple(images.shape[1:])} do not fit the model's input "
                         f"{tuple(input_shape)}")
    _check_images(images)
    return images, labels


def classifier_targets(config: TrainConfig, labels, n: int) -> torch.Tensor:
    """What a classifier of ``config`` learns from a set of ``n`` examples with ``labels``: class indices (one
    column of a 2-D label array with ``label_column``), or 0/1 attribute rows for a multi-label classifier;
    permuted with ``label_seed`` for ``random_labels``."""
    if config.multi_label:
        return _attribute_targets(config, labels, n)
    if labels is None:
        raise ValueError(f"dataset {config.dataset!r} has no labels to train a classifier on")
    labels = torch.as_tensor(labels)
    if labels.ndim == 2:
        if config.label_column is None and labels.shape[1] != 1:
            raise ValueError(f"labels have {labels.shape[1]} columns: set label_column")
        if (config.label_column or 0) >= labels.shape[1]:
            raise ValueError(f"label_column={config.label_column} but the labels have {labels.shape[1]} columns")
        labels = labels[:, config.label_column or 0]
    labels = labels.long()
    n_classes = config.model.n_classes
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}) for n_classes={n_classes}")
    if config.random_labels:
        labels = labels[torch.randperm(n, generator=_generator(config.label_seed))]
    return labels


def conditional_targets(config: TrainConfig, images, targets, n: int) -> torch.Tensor | None:
    """The target h of a conditional objective for ``n`` examples: a float tensor (n, ...) (the second item of
    ``data=(images, h)``), or None for a model without one; an objective on 8-bit levels needs uint8 images."""
    if _tasks.CONDITIONAL_OBJECTIVES[config.objective].needs_uint8 and (
            not isinstance(images, torch.Tensor) or images.dtype != torch.uint8):
        raise ValueError(f"data: {config.objective} models 8-bit images: pass them as uint8 (0-255), got "
                         f"{getattr(images, 'dtype', type(images).__name__)}")
    if targets is None:
        return None
    targets = torch.as_tensor(targets)
    if not targets.is_floating_point() or targets.ndim < 2 or len(targets) != n:
        raise ValueError(f"data: the target of {config.objective} must be a float tensor of shape ({n}, ...), one "
                         f"row per image, got {targets.dtype} {tuple(targets.shape)}")
    if not bool(torch.isfinite(targets).all()):
        raise ValueError("data: the target holds NaN or infinite values")
    return targets.float()


def _attribute_targets(config: TrainConfig, attributes, n: int) -> torch.Tensor:
    if attributes is None:
        raise ValueError(f"dataset {config.dataset!r} has no binary attributes to train a multi-label classifier "
                         f"on (binary_cross_entropy)")
    attributes = torch.as_tensor(attributes)
    n_out = config.model.n_classes
    if attributes.ndim != 2 or attributes.shape[1] != n_out:
        raise ValueError(f"attributes: expected shape (n, {n_out}) for n_classes={n_out} outputs, got "
                         f"{tuple(attributes.shape)}")
    if attributes.numel() and not bool(((attributes == 0) | (attributes == 1)).all()):
        raise ValueError("attributes: binary_cross_entropy needs 0/1 targets")
    attributes = attributes.float()
    if config.random_labels:
        attributes = attributes[torch.randperm(n, generator=_generator(config.label_seed))]
    return attributes


class MemberData:
    """Each member's training (or validation) images and targets, loaded once per distinct data selection."""

    def __init__(self, configs: Sequence[TrainConfig], datas: Sequence):
        self.configs, self.datas, self._loaded, self._targets = list(configs), list(datas), {}, {}

    def __call__(self, m: int, input_shape) -> tuple:
        config, data = self.configs[m], self.datas[m]
        # members drawing the same examples share one copy of them (and of a conditional target)
        ident = (config.dataset, config.split, config.n, config.subset_seed, config.label_column, id(data))
        if ident not in self._loaded:
            self._loaded[ident] = load_data(config, data, input_shape)
        images, labels = self._loaded[ident]
        if config.is_vae:
            return images, None
        if config.conditional:
            if ident not in self._targets:
                self._targets[ident] = conditional_targets(config, images, labels, len(images))
            return images, self._targets[ident]
        return images, classifier_targets(config, labels, len(images))


def data_init(config: TrainConfig, model: nn.Module, images, targets) -> None:
    """Run ``model.initialize(x, h)`` on the member's seeded first batch (:func:`replab.train.tasks.init_batch`),
    with the noise of its own stream: the data-dependent initialisation of its solo run."""
    if not callable(getattr(model, "initialize", None)) or config.init_from is not None:
        return
    idx = _tasks.init_batch(len(images), config.batch_size, config.seed)
    x = torch.as_tensor(images[idx])
    x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    conditional = _tasks.CONDITIONAL_OBJECTIVES.get(config.objective)
    x = conditional.model_input(x) if conditional is not None else x
    h = None if targets is None else targets[idx]
    with _noise.using(_noise.HashNoise(_noise.seed_word(config.seed, "initialize"), 0)):
        model.initialize(x, h)


class Batches:
    """Batch t of every member of a group, as tensors of shape (K, B, ...) on ``device``.

    Parameters
    ----------
    images : one image set per member (all of the same size; members may share one set, which is then kept
        once), uint8 or float tensors or lazily rendered views.
    targets : one target tensor per member (class indices, attribute rows, or the float targets (N, ...) of a
        conditional objective), or None (VAEs, unconditional models); members that share one tensor keep one copy.
    batch_size, seeds : B, and each member's seed (its data order).
    """

    def __init__(self, images: list, targets: list | None, batch_size: int, seeds: list[int],
                 device: torch.device):
        n = len(images[0])
        if any(len(im) != n for im in images):
            raise ValueError("Batches: the members of a group need image sets of one size")
        if n < batch_size:
            raise ValueError(f"batch_size={batch_size} is larger than the dataset ({n} examples)")
        shared = all(im is images[0] for im in images)
        merged = images[0] if shared else torch.cat([torch.as_tensor(im) for im in images])
        fits = isinstance(merged, torch.Tensor) and merged.numel() * merged.element_size() < DEVICE_BYTES
        # moved once: batches are then indexed where they live, with no copy per step
        self.images = merged.to(device) if (device.type != "cpu" and fits) else merged
        k = len(images)
        self.index_device = self.images.device if isinstance(self.images, torch.Tensor) else torch.device("cpu")
        offsets = torch.zeros(k, dtype=torch.long) if shared else torch.arange(k) * n
        self.offsets = offsets[:, None].to(self.index_device)
        self.shared_targets = targets is not None and all(t is targets[0] for t in targets)
        if targets is None:
            self.targets = None
        else:
            self.targets = (targets[0] if self.shared_targets else torch.stack(list(targets))).to(device)
        self.n, self.b, self.seeds, self.device = n, batch_size, list(seeds), device
        self.per_epoch = n // batch_size
        self._epoch, self._perm = -1, None

    def __call__(self, step: int):
        epoch, pos = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            perms = torch.stack([torch.randperm(self.n, generator=_generator(stream_seed(s, epoch, "data")))
                                 for s in self.seeds])
            self._perm = perms.to(self.index_device)  # one copy per epoch, none per step
            self._epoch = epoch
        local = self._perm[:, pos * self.b:(pos + 1) * self.b]
        idx = (local + self.offsets).reshape(-1)
        x = self.images[idx].to(self.device, non_blocking=True)
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        x = x.reshape(len(self.seeds), self.b, *x.shape[1:])
        y = None
        if self.targets is not None:
            local = local.to(self.targets.device)
            if self.shared_targets:
                y = self.targets[local]
            elif self.targets.ndim == 2:
                y = self.targets.gather(1, local)
            else:
                y = self.targets[torch.arange(len(self.seeds), device=local.device)[:, None], local]
        return x, y


def augment(x: torch.Tensor, padding: int, flip: bool, noise) -> torch.Tensor:
    """A random crop of each image from its zero-padded copy and, with ``flip``, a random horizontal flip,
    drawn from ``noise`` (a :class:`replab.noise.HashNoise`); vectorised over the batch."""
    b, c, h, w = x.shape
    padded = nn.functional.pad(x, (padding,) * 4)
    oy = noise.randint(2 * padding + 1, (b,)).to(x.device)
    ox = noise.randint(2 * padding + 1, (b,)).to(x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None].expand(b, c, h, w + 2 * padding)
    out = padded.gather(2, rows)
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :].expand(b, c, h, w)
    out = out.gather(3, cols)
    if not flip:
        return out
    flips = noise.rand((b,)) < 0.5
    return torch.where(flips[:, None, None, None], out.flip(-1), out)
