"""The models of the inversion study as cached runs of the training engine (Nash, Kushman & Williams, 2019).

Every model is a run of :func:`replab.train.train`, stored in the artifact cache under its key (its configuration,
the content of the images and representations it learns from, and its code), so every page asking for the same
model gets the same stored run: the classifier (:func:`classifier`, also at a snapshot kept during its training),
one PixelCNN++ p(x | h) per layer (:func:`inversion`, ``layer=None``: the unconditional model of the same size) and
one MSE decoder per layer (:func:`mse_decoder`). Inversion models of one shape (one layer of several classifiers or
snapshots) train together as one stacked model (:func:`inversions`), each stored as its own run.

**Coarse images.** Sampling a PixelCNN++ needs H·W forward passes, too slow on a CPU at 28×28. With
``factor = k > 1`` every image is first average-pooled by k and rounded to 8 bits (the *coarse* image, what the
inversion models describe, exactly and without dequantisation), and the classifier sees that coarse image
upsampled back by pixel repetition. The map coarse ↔ classifier input is a bijection, so the likelihoods, the
information bound and Table 1's check are all about the classifier's actual inputs. ``factor = 1`` is the paper.

**Datasets.** Grey ``mnist10k`` / ``mnist`` (28×28), ``affmnist`` (its offline stand-in) / ``affnist`` (40×40),
and, when their files are given, colour ``svhn`` and ``cifar10`` (32×32×3). Of the real affNIST the study reads the
transformed canvases (:data:`AFFNIST_BATCHES`), for training as for testing: Section 5.2's nets learn invariance
from transformed digits (their 98.7–98.9% test accuracies are those of nets trained on transformed canvases), and
an inversion model must have seen digits off the centre to draw them there. The dataset fixes the paper's per-dataset choices (Appendix A): 32 and
32 classifier filters for grey images, 64 and 128 for colour; a 256-way softmax for grey pixels, a mixture of 10
discretised logistics for colour; inversion dropout 0.5, except 0.1 for CONV1 on SVHN and CIFAR-10 (``max_dropout`` lowers it for short runs); an extra
dropout of 0.2 on the projected context of the CIFAR-10 FC3 model. Every function takes ``device="auto"``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import data as _data
from ..data.stand_ins import PAPER_OF
from ..cache import ArtifactCache, register_code
from ..train import TrainConfig, TrainedRun, run_key, train, train_group
from ..train.data import data_fingerprint
from ..train.groups import groups
from .baseline import MSEDecoder, MSEDecoderConfig
from .classifier import ClassifierConfig
from .fit import accuracy
from .information import CrossEntropy, image_nll
from .pixelcnn import PixelCNNConfig

__all__ = ["AFFNIST_BATCHES", "coarse", "upsample", "CoarseData", "coarse_data", "image_shape", "is_colour",
           "paper_inversion_settings", "ClassifierSpec", "classifier_run", "classifier_data", "classifier", "inversion_run", "inversions",
           "inversion", "mse_decoder"]

# The test cross-entropy of a stored inversion model: keyed by the model's run key and the test pairs.
CE_KIND = "nash-ce"
register_code(CE_KIND, "replab.inversion.information")

# The classifier's input shape per dataset.
_SHAPES = {"mnist10k": (1, 28, 28), "mnist": (1, 28, 28), "affmnist": (1, 40, 40), "affnist": (1, 40, 40),
           "svhn": (3, 32, 32), "cifar10": (3, 32, 32)}
# The real affNIST's files read: the first transformed batch of each split (every training and test digit once,
# under its first random affine map: 60,000 and 10,000 canvases; all 32 batches hold 1.9 million training ones).
AFFNIST_BATCHES = (1,)


def image_shape(dataset: str) -> tuple:
    """The classifier's input shape (C, H, W) for ``dataset``; a ``ValueError`` for a dataset of no page."""
    if dataset not in _SHAPES:
        raise ValueError(f"dataset: expected one of {sorted(_SHAPES)}, got {dataset!r}")
    return _SHAPES[dataset]


def is_colour(dataset: str) -> bool:
    """Whether ``dataset`` has colour images (SVHN, CIFAR-10), which the paper models with logistic mixtures."""
    return image_shape(dataset)[0] == 3


def paper_inversion_settings(dataset: str, layer: str | None) -> dict:
    """The per-dataset choices of Appendix A for the inversion model of ``layer`` (``None``: unconditional):
    likelihood, mixture size, dropout and context dropout."""
    colour = is_colour(dataset)
    return {"likelihood": "logistic" if colour else "softmax", "n_mix": 10 if colour else 1,
            "dropout": 0.1 if colour and layer == "CONV1" else 0.5,
            "context_dropout": 0.2 if dataset == "cifar10" and layer == "FC3" else 0.0}


def coarse(images: torch.Tensor, factor: int) -> torch.Tensor:
    """8-bit images (N, C, H, W) average-pooled by ``factor`` and rounded back to 8 bits."""
    if int(factor) < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"images: expected uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    if factor == 1:
        return images.clone()
    if images.shape[2] % factor or images.shape[3] % factor:
        raise ValueError(f"factor {factor} does not divide the image size {tuple(images.shape[2:])}")
    return F.avg_pool2d(images.float(), factor).round().clamp(0, 255).to(torch.uint8)


def upsample(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Coarse images back at the classifier's size by pixel repetition (the inverse of :func:`coarse` on them)."""
    return images.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def _draw(ds, n: int, seed: int, dataset: str, split: str):
    """``n`` images of ``ds``; an offline stand-in smaller than the paper's set asked for (a page at ``medium`` or
    ``full`` with ``stand_ins=True``) gives all it holds, with a warning."""
    n = int(n)
    if n > len(ds) and dataset in PAPER_OF:
        warnings.warn(f"{dataset} holds {len(ds)} {split} images, fewer than the {n} asked for: using all of them",
                      stacklevel=3)
        n = len(ds)
    return ds.sample(n, seed)


class CoarseData:
    """Coarse train and test images of one dataset (``.train``, ``.test``: uint8) with labels, and the
    classifier's view of them (:meth:`full`)."""

    def __init__(self, dataset: str, n_train: int, n_test: int, factor: int, seed: int = 0):
        image_shape(dataset)
        self.dataset, self.factor = dataset, int(factor)
        extra = {"transformed": True, "batches": AFFNIST_BATCHES} if dataset == "affnist" else {}
        tr = _draw(_data.load(dataset, split="train", **extra), n_train, seed, dataset, "training")
        te = _draw(_data.load(dataset, split="test", **extra), n_test, seed, dataset, "test")
        self.train, self.test = coarse(tr.images, factor), coarse(te.images, factor)
        self.train_labels = torch.as_tensor(tr.labels).long()
        self.test_labels = torch.as_tensor(te.labels).long()

    def full(self, images: torch.Tensor) -> torch.Tensor:
        return upsample(images, self.factor)


def coarse_data(dataset: str, n_train: int, n_test: int, factor: int, seed: int = 0) -> CoarseData:
    """``n_train`` training and ``n_test`` test images of ``dataset`` (the same ones for the same ``seed``),
    average-pooled by ``factor``."""
    return CoarseData(dataset, n_train, n_test, factor, seed)


@dataclass(frozen=True)
class ClassifierSpec:
    """One classifier: its data (dataset, training and test sizes, coarse factor) and its training run
    (:func:`classifier_run`). ``conv_channels=None`` takes the paper's (32, 32) for grey datasets and (64, 128)
    for colour ones; ``snapshots`` are the update counts after which the weights are kept. ``data_seed`` picks
    the training and test images (``None``: ``seed``), so classifiers of several seeds can share one data set."""

    dataset: str = "mnist10k"
    variant: str = "conv"          # "conv", "global_pool" or "fc" (Section 5.2)
    n_train: int = 2000
    factor: int = 2
    steps: int = 500
    batch_size: int = 64
    lr: float = 3e-4
    dropout: float = 0.5
    conv_channels: tuple[int, ...] | None = None
    fc_units: int = 256
    hidden_units: int = 2048       # width of the fully connected variant's two layers
    seed: int = 0
    snapshots: tuple[int, ...] = ()
    n_test: int = 500
    data_seed: int | None = None

    def __post_init__(self):
        channels = self.conv_channels
        if channels is None:
            channels = (64, 128) if is_colour(self.dataset) else (32, 32)
        object.__setattr__(self, "conv_channels", tuple(int(c) for c in channels))
        object.__setattr__(self, "snapshots", tuple(sorted(int(s) for s in self.snapshots)))


def classifier_run(spec: ClassifierSpec, device: str = "auto") -> TrainConfig:
    """The training run of the classifier ``spec``: cross-entropy with Adam on the classifier's view of the
    training images (Section 5.1, Appendix A), the weights kept after every update count in ``spec.snapshots``."""
    model = ClassifierConfig(image_shape=image_shape(spec.dataset), variant=spec.variant,
                             conv_channels=spec.conv_channels, fc_units=int(spec.fc_units),
                             hidden_units=int(spec.hidden_units), dropout=float(spec.dropout))
    return TrainConfig(model, objective="cross_entropy", dataset=spec.dataset,
                       batch_size=min(int(spec.batch_size), int(spec.n_train)), steps=int(spec.steps),
                       lr=float(spec.lr), seed=int(spec.seed), snapshot_steps=spec.snapshots, device=device)


def classifier_data(spec: ClassifierSpec) -> CoarseData:
    """The images the classifier ``spec`` learns from and is tested on."""
    return coarse_data(spec.dataset, spec.n_train, spec.n_test, spec.factor,
                       spec.seed if spec.data_seed is None else spec.data_seed)


def classifier(spec: ClassifierSpec, snapshot: int | None = None, cache: ArtifactCache | None = None,
               device: str = "auto"):
    """The trained classifier of ``spec`` (or its state after ``snapshot`` updates), in eval mode on the CPU,
    with its test accuracy: ``(model, accuracy)``. Training runs on ``device``."""
    d = classifier_data(spec)
    run = train(classifier_run(spec, device), cache or ArtifactCache(), data=(d.full(d.train), d.train_labels))
    if snapshot is None:
        model = run.model
    else:
        if snapshot not in run.snapshots:
            raise ValueError(f"snapshot: no snapshot after {snapshot} updates; kept {sorted(run.snapshots)}")
        model = run.model_at(snapshot)
    model = model.cpu().eval()
    return model, float(accuracy(model, d.full(d.test), d.test_labels))


def inversion_run(spec: ClassifierSpec, layer: str | None, data: CoarseData, context_shape: tuple | None = None, *,
                  n_filters=8, n_res=1, dropout=None, max_dropout=None, steps=200, batch_size=16, lr=1e-3,
                  lr_decay=0.9999, seed=0, device: str = "auto") -> TrainConfig:
    """The training run of the PixelCNN++ p(x | h) of ``layer`` (representations of shape ``context_shape``;
    ``layer=None``: the unconditional model): the conditional NLL of the coarse training images (Eq. 4) with Adam
    and a per-update learning-rate decay (Appendix A). Likelihood, mixture size and context dropout follow the
    dataset (:func:`paper_inversion_settings`), and so does ``dropout`` when it is ``None``; ``max_dropout`` (when
    given) caps it, for runs far shorter than the paper's."""
    paper = paper_inversion_settings(spec.dataset, layer)
    rate = float(paper["dropout"] if dropout is None else dropout)
    if max_dropout is not None:
        if not 0.0 <= float(max_dropout) < 1.0:
            raise ValueError(f"max_dropout must be in [0, 1), got {max_dropout}")
        rate = min(rate, float(max_dropout))
    model = PixelCNNConfig(image_shape=tuple(data.train.shape[1:]), likelihood=paper["likelihood"],
                           n_filters=int(n_filters), n_res=int(n_res), n_mix=paper["n_mix"],
                           dropout=rate,
                           context_shape=None if layer is None else tuple(context_shape),
                           context_dropout=paper["context_dropout"])
    return TrainConfig(model, objective="conditional_nll", dataset=spec.dataset,
                       batch_size=min(int(batch_size), len(data.train)), steps=int(steps), lr=float(lr),
                       lr_decay=float(lr_decay), seed=int(seed), device=device)


def inversions(requests, data: CoarseData, cache: ArtifactCache | None = None, device: str = "auto",
               **settings) -> list[tuple]:
    """The inversion models of several ``(classifier spec, layer, snapshot)`` requests (``layer=None``: the
    unconditional model; ``snapshot=None``: the trained classifier), each trained on ``data.train`` and scored on
    ``data.test``: a list of ``(model on the CPU, CrossEntropy-like dict)`` in order. Models of one shape (the same
    layer of several classifiers or snapshots) train together as one stacked model (:func:`replab.train.train_group`),
    each stored as its own run. ``settings`` are :func:`inversion_run`'s (sizes, steps, rates, seed)."""
    cache = cache or ArtifactCache()
    jobs = []
    for spec, layer, snapshot in (tuple(r) for r in requests):
        clf = None if layer is None else classifier(spec, snapshot, cache, device)[0]
        if clf is not None and layer not in clf.shapes:
            raise ValueError(f"layer: the classifier has no layer {layer!r}; it has {list(clf.shapes)}")
        train_ctx = None if clf is None else clf.extract(data.full(data.train), layer)
        test_ctx = None if clf is None else clf.extract(data.full(data.test), layer)
        config = inversion_run(spec, layer, data, None if clf is None else clf.shapes[layer], device=device,
                               **settings)
        jobs.append((config, (data.train, train_ctx), test_ctx))
    keys = [run_key(config, train_data) for config, train_data, _ in jobs]
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)  # a run asked for twice (an unconditional model) trains once
    unique = list(first.values())
    runs: dict[str, TrainedRun] = {}
    for group in groups([jobs[i][0] for i in unique], size=None):
        order = [unique[j] for j in group]
        trained = train_group([jobs[i][0] for i in order], cache, data=[jobs[i][1] for i in order])
        runs.update(zip((keys[i] for i in order), trained))
    return [(runs[key].model.cpu().eval(), _test_cross_entropy(runs[key], data, test_context, cache, device))
            for key, (_, _, test_context) in zip(keys, jobs)]


def _test_cross_entropy(run: TrainedRun, data: CoarseData, context, cache: ArtifactCache, device: str) -> dict:
    """Eq. 11 on the test pairs, stored beside the run (a pass over the test set is not repeated), with the
    per-image NLLs (``"nll"``, nats, in the order of ``data.test``) that pair two models' cross-entropies."""
    def compute():
        nll = image_nll(run.model, data.test, context, device=device)
        ce = CrossEntropy.of(nll, data.test[0].numel())
        return ce.as_dict() | {"n_dims": ce.n_dims, "nll": nll.tolist()}

    key = {"run": run.key, "test": data_fingerprint((data.test, context))}
    return dict(cache.get_or_compute(CE_KIND, key, compute))


def inversion(spec: ClassifierSpec, layer: str | None, data: CoarseData, snapshot: int | None = None, *,
              cache: ArtifactCache | None = None, device: str = "auto", **settings):
    """The PixelCNN++ p(x | h) of ``layer`` of a classifier (``layer=None``: the unconditional model of the same
    size), trained on ``data.train`` (on ``device``) and scored on ``data.test``: ``(model on the CPU,
    CrossEntropy-like dict)``. ``settings`` are :func:`inversion_run`'s."""
    return inversions([(spec, layer, snapshot)], data, cache, device, **settings)[0]


def mse_decoder(spec: ClassifierSpec, layer: str, data: CoarseData, *, steps=300, batch_size=64, width=32, lr=1e-3,
                seed=0, cache: ArtifactCache | None = None, device: str = "auto") -> MSEDecoder:
    """The MSE decoder (Eq. 3) of ``layer``, trained on ``data.train`` (on ``device``) to output the coarse
    images; returned on the CPU."""
    cache = cache or ArtifactCache()
    clf, _ = classifier(spec, None, cache, device)
    if layer not in clf.shapes:
        raise ValueError(f"layer: the classifier has no layer {layer!r}; it has {list(clf.shapes)}")
    model = MSEDecoderConfig(tuple(clf.shapes[layer]), tuple(data.train.shape[1:]), width=int(width))
    config = TrainConfig(model, objective="reconstruction_mse", dataset=spec.dataset,
                         batch_size=min(int(batch_size), len(data.train)), steps=int(steps), lr=float(lr),
                         seed=int(seed), device=device)
    run = train(config, cache, data=(data.train, clf.extract(data.full(data.train), layer)))
    return run.model.cpu().eval()
