"""One training engine for every model of the zoo: VAEs under any objective of :mod:`replab.objectives`, and
classifiers under cross-entropy, or binary cross-entropy over a dataset's binary attributes (multi-label, CelebA's
40), with random labels, augmentation and dropout as Jamroż et al. and Nash et al. need.

A run is described by a :class:`TrainConfig`; :func:`train` trains it once and stores the result in the artifact
cache under the configuration's hash, so every page that asks for the same configuration reuses it. Snapshots of
the weights are kept at chosen steps. Checkpoints (model, optimiser, RNG states, step, metrics so far) are written
atomically every ``checkpoint_every`` steps, and a run that was killed resumes from its last checkpoint and ends
with exactly the weights of an uninterrupted run: the data order and the sampling noise of step t are pure
functions of (seed, t), and the global RNG state (dropout) travels in the checkpoint.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import models as _models
from . import objectives as _objectives
from .cache import ArtifactCache, atomic_torch_save, atomic_write_bytes, config_hash, safe_torch_load
from .runtime import generator as _generator
from .runtime import get_device, progress, seed_everything

log = logging.getLogger("replab.train")

__all__ = ["TrainConfig", "TrainedRun", "train", "load_run", "run_key", "CLASSIFIER_OBJECTIVE",
           "CLASSIFIER_OBJECTIVES", "ARTIFACT_KIND"]

CLASSIFIER_OBJECTIVE = "cross_entropy"
# classifier objectives -> the loss of replab.objectives: one label per image (softmax), or a 0/1 row of binary
# attributes per image (one logistic output each, e.g. CelebA's 40)
CLASSIFIER_OBJECTIVES = {"cross_entropy": _objectives.cross_entropy,
                         "binary_cross_entropy": _objectives.binary_cross_entropy}
MULTI_LABEL = "binary_cross_entropy"
ARTIFACT_KIND = "train"
OPTIMIZERS = ("adam", "sgd")
SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model (its hash is the cache key).

    Parameters
    ----------
    model : a model configuration dataclass of :mod:`replab.models`.
    objective : a name in :data:`replab.objectives.OBJECTIVES` for VAEs; for classifiers ``"cross_entropy"``
        (one label per image) or ``"binary_cross_entropy"`` (multi-label: the model's ``n_classes`` outputs are one
        logit per binary attribute of the dataset's ``attributes``, e.g. CelebA's 40).
    objective_params : the objective's hyper-parameters (e.g. ``{"beta": 4}``).
    dataset, split, n : the data, through ``replab.data.load(dataset, split=split)``; ``n`` examples drawn at
        random with ``subset_seed`` (None: all). ``dataset="synthetic"`` is seeded noise shaped like the model's
        input (for smoke tests), of ``n`` (default 256) examples.
    batch_size, steps, lr, optimizer, betas, eps, momentum, nesterov, weight_decay, grad_clip : optimisation
        (``steps`` optimiser updates; Adam by default, as disentanglement_lib; SGD with Nesterov momentum for the
        classifiers of Jamroż et al.).
    seed : initialisation, data order and sampling noise.
    snapshot_steps : steps (number of updates done; 0 is the initialisation) at which the weights are kept.
    checkpoint_every, log_every : how often a resumable checkpoint is written and metrics are recorded.
    device : ``"auto"`` (CUDA when present) or a device name. ``amp`` (bfloat16 autocast of the model's layers;
        the objective stays in float32, and bfloat16 needs no loss scaling) and ``compile`` (``torch.compile`` of
        the model) take effect on CUDA only; on a CPU they are ignored.
    label_column : which column of a 2-D label array (or of a factor dataset's ``factor_classes``, e.g. dSprites'
        shape, scale, ...) a classifier learns; None: the dataset's labels. ``random_labels`` replaces the labels
        by a fixed random permutation of them (drawn with ``label_seed``), as in Zhang et al.'s memorisation runs.
    augment, crop_padding : random crop (zero padding ``crop_padding``) + horizontal flip of each training image.
    normalize_mean, normalize_std : per-channel input normalisation for classifiers (None: none).
    """
    model: Any
    objective: str = "beta_vae"
    objective_params: dict = field(default_factory=dict)
    dataset: str = "dsprites"
    split: str = "train"
    n: int | None = None
    subset_seed: int = 0
    batch_size: int = 64
    steps: int = 1000
    lr: float = 1e-4
    optimizer: str = "adam"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0
    grad_clip: float | None = None
    seed: int = 0
    snapshot_steps: tuple[int, ...] = ()
    checkpoint_every: int = 1000
    log_every: int = 1
    device: str = "auto"
    amp: bool = False
    compile: bool = False
    label_column: int | None = None
    random_labels: bool = False
    label_seed: int = 0
    augment: bool = False
    crop_padding: int = 4
    normalize_mean: tuple[float, ...] | None = None
    normalize_std: tuple[float, ...] | None = None

    def __post_init__(self):
        if type(self.model) not in _models.MODELS:
            raise ValueError(f"model must be a model configuration of replab.models, got {self.model!r}")
        vae = _models.is_vae_config(self.model)
        if vae:
            fn = _objectives.objective(self.objective)
        elif self.objective not in CLASSIFIER_OBJECTIVES:
            raise ValueError(f"objective must be one of {tuple(CLASSIFIER_OBJECTIVES)} for a classifier, got "
                             f"{self.objective!r}")
        else:
            fn = None
        if not isinstance(self.objective_params, dict):
            raise ValueError(f"objective_params must be a dict, got {self.objective_params!r}")
        if fn is not None:
            allowed = list(inspect.signature(fn).parameters)[4:]
            unknown = sorted(set(self.objective_params) - set(allowed))
            if unknown:
                raise ValueError(f"objective_params: unknown parameter(s) {unknown} for {self.objective!r}; "
                                 f"known: {allowed}")
        elif self.objective_params:
            raise ValueError(f"objective_params must be empty for {self.objective}")
        for name in ("batch_size", "steps", "checkpoint_every", "log_every"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.n is not None and not (isinstance(self.n, int) and self.n > 0):
            raise ValueError(f"n must be a positive integer or None, got {self.n!r}")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        snaps = tuple(sorted(set(int(s) for s in self.snapshot_steps)))
        bad = [s for s in snaps if not 0 <= s <= self.steps]
        if bad:
            raise ValueError(f"snapshot_steps must lie in [0, steps={self.steps}], got {bad}")
        object.__setattr__(self, "snapshot_steps", snaps)
        object.__setattr__(self, "betas", tuple(self.betas))
        if (self.normalize_mean is None) != (self.normalize_std is None):
            raise ValueError("normalize_mean and normalize_std must be given together")
        if vae and (self.random_labels or self.augment or self.normalize_mean is not None):
            raise ValueError("random_labels, augment and normalize_* apply to classifiers only")
        if self.multi_label and self.label_column is not None:
            raise ValueError("label_column applies to cross_entropy; binary_cross_entropy learns every attribute")
        get_device(self.device) if self.device != "auto" else None

    @property
    def multi_label(self) -> bool:
        """Whether this is a multi-label classifier (binary cross-entropy over a dataset's binary attributes)."""
        return self.objective == MULTI_LABEL


@dataclass
class TrainedRun:
    """A trained model (in eval mode), its weights at the snapshot steps, and the per-step metrics."""
    config: TrainConfig
    model: nn.Module
    snapshots: dict[int, dict[str, torch.Tensor]]
    metrics: pd.DataFrame
    key: str | None = None
    metrics_path: Path | None = None

    def model_at(self, step: int) -> nn.Module:
        """A fresh model holding the weights snapshotted after ``step`` updates (in eval mode)."""
        if step not in self.snapshots:
            raise ValueError(f"step: no snapshot at {step!r}; snapshots: {sorted(self.snapshots)}")
        model = _models.build(self.config.model)
        model.load_state_dict(self.snapshots[step])
        device = next(self.model.parameters()).device
        return model.to(device).eval()


# -- keys, seeds ------------------------------------------------------------------------------------------------------
def _data_fingerprint(data, multi_label: bool = False) -> str | None:
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


def _key_config(config: TrainConfig, data) -> Any:
    fp = _data_fingerprint(data, config.multi_label)
    return config if fp is None else {"train": config, "data": fp}


def run_key(config: TrainConfig, data=None) -> str:
    """The cache key of ``config`` (trained on ``data`` when given in memory)."""
    return config_hash(_key_config(config, data))


def _stream_seed(seed: int, index: int, stream: str) -> int:
    digest = hashlib.blake2b(f"{seed}:{stream}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


# -- data --------------------------------------------------------------------------------------------------------------
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


def _load_data(config: TrainConfig, data, input_shape):
    """(images, labels): images a uint8 or float tensor, or an indexable view of a lazily rendered set."""
    if data is None and config.dataset == SYNTHETIC:
        n = config.n or 256
        g = _generator(_stream_seed(config.subset_seed, 0, SYNTHETIC))
        images = (torch.rand((n, *input_shape), generator=g) < 0.3).to(torch.uint8) * 255
        labels = torch.randint(0, 10, (n,), generator=g)
        return images, labels
    if data is None:
        from . import data as _data  # imported here so the engine also runs on in-memory data alone
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
    return images, labels


def _classifier_labels(config: TrainConfig, labels, n: int) -> torch.Tensor:
    if config.multi_label:
        return _attribute_targets(config, labels, n)
    if labels is None:
        raise ValueError(f"dataset {config.dataset!r} has no labels to train a classifier on")
    labels = torch.as_tensor(labels)
    if labels.ndim == 2:
        if config.label_column is None and labels.shape[1] != 1:
            raise ValueError(f"labels have {labels.shape[1]} columns: set label_column")
        labels = labels[:, config.label_column or 0]
    labels = labels.long()
    n_classes = config.model.n_classes
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}) for n_classes={n_classes}")
    if config.random_labels:
        labels = labels[torch.randperm(n, generator=_generator(config.label_seed))]
    return labels


def _attribute_targets(config: TrainConfig, attributes, n: int) -> torch.Tensor:
    """The 0/1 attribute rows a multi-label classifier learns (rows permuted for ``random_labels``)."""
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


class _Batches:
    """Batch t of a run: epoch e = t // (N // B) visits a permutation drawn from (seed, e), without replacement."""

    def __init__(self, images: torch.Tensor, labels, batch_size: int, seed: int, device: torch.device):
        n = len(images)
        if n < batch_size:
            raise ValueError(f"batch_size={batch_size} is larger than the dataset ({n} examples)")
        on_device = (device.type != "cpu" and isinstance(images, torch.Tensor)
                     and images.numel() * images.element_size() < 4 * 2**30)
        self.images = images.to(device) if on_device else images
        self.labels = labels.to(self.images.device) if labels is not None else None
        self.n, self.b, self.seed, self.device = n, batch_size, seed, device
        self.per_epoch = n // batch_size
        self._epoch, self._perm = -1, None

    def __call__(self, step: int):
        epoch, pos = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = _generator(_stream_seed(self.seed, epoch, "data"))
            perm = torch.randperm(self.n, generator=g)
            self._perm = perm.to(self.images.device) if isinstance(self.images, torch.Tensor) else perm
            self._epoch = epoch
        idx = self._perm[pos * self.b:(pos + 1) * self.b]
        x = self.images[idx].to(self.device, non_blocking=True)
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        y = self.labels[idx.to(self.labels.device)].to(self.device, non_blocking=True) \
            if self.labels is not None else None
        return x, y


def _augment(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Random crop of each image from its zero-padded copy, then a random horizontal flip (vectorised)."""
    b, c, h, w = x.shape
    padded = nn.functional.pad(x, (padding,) * 4)
    oy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=x.device)
    ox = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None].expand(b, c, h, w + 2 * padding)
    out = padded.gather(2, rows)
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :].expand(b, c, h, w)
    out = out.gather(3, cols)
    flip = torch.rand((b,), generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


# -- the loop ----------------------------------------------------------------------------------------------------------
def _make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=config.betas, eps=config.eps,
                                weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                           weight_decay=config.weight_decay)


def _float32(value):
    """Tensors (also inside tuples such as :class:`~replab.models.VAEOutput`) of a low-precision dtype, in float32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() and value.dtype != torch.float64 else value
    if isinstance(value, tuple):
        items = [_float32(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    return value


class _Autocast:
    """The model seen through mixed precision: its forward, ``encode`` and ``decode`` run under bfloat16 autocast
    and return float32, so the objective (log-sum-exps, kernel matrices, covariances) is computed in float32
    outside autocast. Other attributes are the model's own."""

    def __init__(self, model, device_type: str, dtype: torch.dtype = torch.bfloat16):
        self._model, self._device_type, self._dtype = model, device_type, dtype

    def _run(self, fn, *args, **kwargs):
        with torch.autocast(self._device_type, dtype=self._dtype):
            out = fn(*args, **kwargs)
        return _float32(out)

    def __call__(self, *args, **kwargs):
        return self._run(self._model, *args, **kwargs)

    def encode(self, *args, **kwargs):
        return self._run(self._model.encode, *args, **kwargs)

    def decode(self, *args, **kwargs):
        return self._run(self._model.decode, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


def _clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


class _MetricLog:
    """Per-step metrics kept as detached tensors and turned into numbers in bulk (no GPU sync per step)."""

    def __init__(self, rows: list[dict] | None = None):
        self.rows = list(rows or [])
        self._pending: list[tuple[int, dict]] = []

    def add(self, step: int, logs: dict):
        self._pending.append((step, {k: v.detach() for k, v in logs.items()}))
        if len(self._pending) >= 256:
            self.flush()

    def flush(self) -> list[dict]:
        if self._pending:
            keys = list(self._pending[0][1])
            values = torch.stack([torch.stack([logs[k].float().reshape(()) for k in keys])
                                  for _, logs in self._pending]).cpu().tolist()
            self.rows.extend({"step": s, **dict(zip(keys, v))} for (s, _), v in zip(self._pending, values))
            self._pending = []
        return self.rows


def _fit(config: TrainConfig, data, checkpoint: Path | None, callbacks: Sequence[Callable]) -> dict:
    device = get_device(config.device)
    seed_everything(config.seed)
    model = _models.build(config.model).to(device)
    vae = _models.is_vae_config(config.model)
    images, labels = _load_data(config, data, model.input_shape)
    if not vae:
        labels = _classifier_labels(config, labels, len(images))
    batches = _Batches(images, labels if not vae else None, config.batch_size, config.seed, device)
    optimizer = _make_optimizer(config, model.parameters())
    snapshots: dict[int, dict] = {}
    metrics = _MetricLog()
    start = 0
    if checkpoint is not None and checkpoint.is_file():
        state = safe_torch_load(checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        snapshots = {int(k): v for k, v in state["snapshots"].items()}
        metrics = _MetricLog(state["metrics"])
        torch.set_rng_state(state["rng_cpu"].cpu())
        if device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"].cpu(), device)
        start = int(state["step"])
        log.info("replab train: resuming from step %d", start)
    elif 0 in config.snapshot_steps:
        snapshots[0] = _clone_state(model)

    cuda = device.type == "cuda"
    forward = torch.compile(model) if (config.compile and cuda) else model
    loss_fn = _objectives.objective(config.objective) if vae else CLASSIFIER_OBJECTIVES[config.objective]
    params = dict(config.objective_params)
    norm = None
    if config.normalize_mean is not None:
        norm = (torch.tensor(config.normalize_mean, device=device)[:, None, None],
                torch.tensor(config.normalize_std, device=device)[:, None, None])
    if config.amp and cuda:
        forward = _Autocast(forward, "cuda")
    g = torch.Generator(device=device)
    snap_set = set(config.snapshot_steps)
    model.train()
    bar = progress(range(start, config.steps), desc=f"train {config.objective}", total=config.steps - start)
    for step in bar:
        g.manual_seed(_stream_seed(config.seed, step, "noise"))
        x, y = batches(step)
        if vae:
            logs = loss_fn(forward, x, step, g, **params)
        else:
            if config.augment:
                x = _augment(x, config.crop_padding, g)
            if norm is not None:
                x = (x - norm[0]) / norm[1]
            logs = loss_fn(forward(x), y)
        optimizer.zero_grad(set_to_none=True)
        logs["loss"].backward()
        if config.grad_clip is not None:
            logs["grad_norm"] = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            metrics.add(done, logs)
        if done in snap_set:
            snapshots[done] = _clone_state(model)
        if checkpoint is not None and done % config.checkpoint_every == 0 and done < config.steps:
            atomic_torch_save({
                "step": done, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "snapshots": snapshots, "metrics": metrics.flush(), "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state(device) if cuda else None}, checkpoint)
        for callback in callbacks:
            callback(done, logs)
    model.eval()
    return {"state_dict": _clone_state(model), "snapshots": snapshots, "metrics": metrics.flush(),
            "steps": config.steps}


def _metrics_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame.from_records(rows) if rows else pd.DataFrame({"step": []})


def _as_run(config: TrainConfig, payload: dict, key: str | None, metrics_path: Path | None) -> TrainedRun:
    model = _models.build(config.model)
    model.load_state_dict(payload["state_dict"])
    model = model.to(get_device(config.device)).eval()
    snapshots = {int(k): v for k, v in payload["snapshots"].items()}
    return TrainedRun(config, model, snapshots, _metrics_frame(payload["metrics"]), key, metrics_path)


def _resolve_cache(cache) -> ArtifactCache | None:
    if cache is False:
        return None
    return ArtifactCache() if cache is None else cache


def load_run(config: TrainConfig, cache: ArtifactCache | None = None, *, data=None) -> TrainedRun | None:
    """The cached run of ``config``, or None when it has not been trained (nothing is trained here)."""
    cache = _resolve_cache(cache)
    if cache is None:
        return None
    key_config = _key_config(config, data)
    payload = cache.load(ARTIFACT_KIND, key_config)
    if payload is None:
        return None
    path = cache.path(ARTIFACT_KIND, key_config)
    metrics_path = path.with_suffix(".metrics.csv")
    if not metrics_path.is_file():  # e.g. the process died between the artifact and its log
        atomic_write_bytes(metrics_path, _metrics_frame(payload["metrics"]).to_csv(index=False).encode())
    return _as_run(config, payload, path.stem, metrics_path)


def train(config: TrainConfig, cache: ArtifactCache | None | bool = None, *, data=None,
          callbacks: Sequence[Callable[[int, dict], None]] = (), checkpoint_dir: str | Path | None = None
          ) -> TrainedRun:
    """Train ``config`` once, or load it from the artifact cache.

    Parameters
    ----------
    config : TrainConfig
    cache : ArtifactCache, optional
        Where the result and the checkpoints live; default :class:`~replab.cache.ArtifactCache` (its default
        root); ``False`` trains in memory without storing anything (and without checkpoints unless
        ``checkpoint_dir`` is given).
    data : optional
        In-memory data instead of ``replab.data.load``: an image tensor (uint8 in 0–255, or float in [0, 1]) of
        shape (N, C, H, W), an ``(images, labels)`` pair, or a dataset with ``.images`` and ``.labels``. Its
        content enters the cache key.
    callbacks : callables ``f(step, logs)`` run after each update (``logs``: the objective's tensors).
    checkpoint_dir : where the resumable checkpoint goes (default: beside the cache).

    Returns
    -------
    TrainedRun
        The model in eval mode, the snapshots ``{step: state_dict}`` and the metrics per logged step (also
        written as CSV next to the cached artifact, ``run.metrics_path``).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    cache = _resolve_cache(cache)
    key_config = _key_config(config, data)
    key = cache.key(ARTIFACT_KIND, key_config) if cache is not None else config_hash(key_config)
    if checkpoint_dir is not None:
        checkpoint = Path(checkpoint_dir) / f"{key}.pt"
    else:
        checkpoint = cache.root / "_checkpoints" / key / "last.pt" if cache is not None else None
    # Under the key's lock: two processes asking for the same model (two pages built in parallel, two grid
    # workers) train it once; the second waits, then loads it.
    with cache.lock(ARTIFACT_KIND, key_config) if cache is not None else contextlib.nullcontext():
        if cache is not None:
            run = load_run(config, cache, data=data)
            if run is not None:
                return run
        payload = _fit(config, data, checkpoint, callbacks)
        metrics_path = None
        if cache is not None:
            path = cache.save(ARTIFACT_KIND, key_config, payload)
            metrics_path = path.with_suffix(".metrics.csv")
            atomic_write_bytes(metrics_path, _metrics_frame(payload["metrics"]).to_csv(index=False).encode())
    if checkpoint is not None and checkpoint.exists():
        checkpoint.unlink()
        if checkpoint.parent.name == key:
            try:
                checkpoint.parent.rmdir()
            except OSError:
                pass
    return _as_run(config, payload, key, metrics_path)

