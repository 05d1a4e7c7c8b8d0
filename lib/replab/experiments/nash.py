"""The experiments of Nash, Kushman & Williams (2019), shared by the four pages of ``notebooks/nash2019``.

Every model is a run of the training engine (:class:`replab.train.TrainConfig`, :func:`replab.train.train`), stored
in the artifact cache under its key (its configuration, the content of the images and representations it learns
from, and its code), so the pages share them: the classifier is trained once (:func:`classifier`), one inversion
model per layer (:func:`inversion`, plus the unconditional model of the same size for H(x)), one MSE decoder per
layer (:func:`mse_decoder`), and the training-dynamics models invert classifier snapshots kept during the same
training run. Inversion models of one shape (one layer of several classifiers or snapshots) train together as one
stacked model (:func:`inversions`), each stored as its own run.

**Coarse images.** Sampling a PixelCNN++ needs H·W forward passes, too slow on a CPU at 28×28. With
``factor = k > 1`` every image is first average-pooled by k and rounded to 8 bits (the *coarse* image, what the
inversion models describe, exactly and without dequantisation), and the classifier sees that coarse image
upsampled back by pixel repetition. The map coarse ↔ classifier input is a bijection, so the likelihoods, the
information bound and Table 1's check are all about the classifier's actual inputs. ``factor = 1`` is the paper.

**Datasets.** Grey ``mnist10k`` / ``mnist`` (28×28) and ``affmnist`` (40×40), and, when their files are given,
colour ``svhn`` and ``cifar10`` (32×32×3). The dataset fixes the paper's per-dataset choices (Appendix A): 32 and
32 classifier filters for grey images, 64 and 128 for colour; a 256-way softmax for grey pixels, a mixture of 10
discretised logistics for colour; inversion dropout 0.5, except 0.1 for CONV1 on SVHN and CIFAR-10; an extra
dropout of 0.2 on the projected context of the CIFAR-10 FC3 model. Every helper takes ``device="auto"``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import data as _data
from ..cache import ArtifactCache, register_code
from ..inversion import ClassifierConfig, MSEDecoder, MSEDecoderConfig, PixelCNNConfig, cross_entropy
from ..inversion.fit import accuracy
from ..train import TrainConfig, TrainedRun, run_key, train, train_group
from ..train.groups import groups
from ..train.data import data_fingerprint

__all__ = ["coarse", "upsample", "Data", "load", "is_colour", "paper_inversion_settings", "classifier_config",
           "classifier_run", "classifier", "inversion_run", "inversions", "inversion", "mse_decoder", "ink_centroid",
           "position_error", "nats_table"]

# The test cross-entropy of a stored inversion model: keyed by the model's run key and the test pairs.
CE_KIND = "nash-ce"
register_code(CE_KIND, "replab.inversion.information")

# The classifier's input shape per dataset.
_SHAPES = {"mnist10k": (1, 28, 28), "mnist": (1, 28, 28), "affmnist": (1, 40, 40), "svhn": (3, 32, 32),
           "cifar10": (3, 32, 32)}


def _check_dataset(dataset: str) -> tuple:
    if dataset not in _SHAPES:
        raise ValueError(f"dataset: expected one of {sorted(_SHAPES)}, got {dataset!r}")
    return _SHAPES[dataset]


def is_colour(dataset: str) -> bool:
    """Whether ``dataset`` has colour images (SVHN, CIFAR-10), which the paper models with logistic mixtures."""
    return _check_dataset(dataset)[0] == 3


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


class Data:
    """Coarse train and test images of one dataset (``.train``, ``.test``: uint8) with labels, and the
    classifier's view of them (:meth:`full`)."""

    def __init__(self, dataset: str, n_train: int, n_test: int, factor: int, seed: int = 0):
        _check_dataset(dataset)
        self.dataset, self.factor = dataset, int(factor)
        tr = _data.load(dataset, split="train").sample(int(n_train), seed)
        te = _data.load(dataset, split="test").sample(int(n_test), seed)
        self.train, self.test = coarse(tr.images, factor), coarse(te.images, factor)
        self.train_labels = torch.as_tensor(tr.labels).long()
        self.test_labels = torch.as_tensor(te.labels).long()

    def full(self, images: torch.Tensor) -> torch.Tensor:
        return upsample(images, self.factor)


def load(dataset: str, n_train: int, n_test: int, factor: int, seed: int = 0) -> Data:
    return Data(dataset, n_train, n_test, factor, seed)


def classifier_config(dataset="mnist10k", variant="conv", n_train=2000, factor=2, steps=500, batch_size=64,
                      lr=3e-4, dropout=0.5, conv_channels=None, fc_units=256, hidden_units=2048, seed=0,
                      snapshots=(), n_test=500) -> dict:
    """The description (a plain dict) of one classifier: its data (dataset, training and test sizes, coarse
    factor) and its run (:func:`classifier_run`); ``conv_channels=None`` takes the paper's (32, 32) for grey
    datasets and (64, 128) for colour ones."""
    if conv_channels is None:
        conv_channels = (64, 128) if is_colour(dataset) else (32, 32)
    return {"dataset": dataset, "variant": variant, "n_train": int(n_train), "factor": int(factor),
            "steps": int(steps), "batch_size": int(batch_size), "lr": float(lr), "dropout": float(dropout),
            "conv_channels": list(conv_channels), "fc_units": int(fc_units), "hidden_units": int(hidden_units),
            "seed": int(seed), "snapshots": sorted(int(s) for s in snapshots), "n_test": int(n_test)}


def classifier_run(cfg: dict, device: str = "auto") -> TrainConfig:
    """The training run of the classifier ``cfg``: cross-entropy with Adam on the classifier's view of the
    training images (Section 5.1, Appendix A), the weights kept after every update count in ``cfg["snapshots"]``."""
    model = ClassifierConfig(image_shape=_check_dataset(cfg["dataset"]), variant=cfg["variant"],
                             conv_channels=tuple(cfg["conv_channels"]), fc_units=cfg["fc_units"],
                             hidden_units=cfg["hidden_units"], dropout=cfg["dropout"])
    return TrainConfig(model, objective="cross_entropy", dataset=cfg["dataset"],
                       batch_size=min(cfg["batch_size"], cfg["n_train"]), steps=cfg["steps"], lr=cfg["lr"],
                       seed=cfg["seed"], snapshot_steps=tuple(cfg["snapshots"]), device=device)


def _classifier_data(cfg: dict) -> Data:
    return load(cfg["dataset"], cfg["n_train"], cfg["n_test"], cfg["factor"], cfg["seed"])


def classifier(cfg: dict, snapshot: int | None = None, cache: ArtifactCache | None = None, device: str = "auto"):
    """The trained classifier of ``cfg`` (or its state after ``snapshot`` updates), in eval mode on the CPU, with
    its test accuracy: ``(model, accuracy)``. Training runs on ``device``."""
    d = _classifier_data(cfg)
    run = train(classifier_run(cfg, device), cache or ArtifactCache(), data=(d.full(d.train), d.train_labels))
    if snapshot is None:
        model = run.model
    else:
        if snapshot not in run.snapshots:
            raise ValueError(f"snapshot: no snapshot after {snapshot} updates; kept {sorted(run.snapshots)}")
        model = run.model_at(snapshot)
    model = model.cpu().eval()
    return model, float(accuracy(model, d.full(d.test), d.test_labels))


def inversion_run(clf_cfg: dict, layer: str | None, data: Data, context_shape: tuple | None = None, n_filters=8,
                  n_res=1, dropout=None, steps=200, batch_size=16, lr=1e-3, lr_decay=0.9999, seed=0,
                  device: str = "auto") -> TrainConfig:
    """The training run of the PixelCNN++ p(x | h) of ``layer`` (representations of shape ``context_shape``;
    ``layer=None``: the unconditional model): the conditional NLL of the coarse training images (Eq. 4) with Adam
    and a per-update learning-rate decay (Appendix A). Likelihood, mixture size and context dropout follow the
    dataset (:func:`paper_inversion_settings`), and so does ``dropout`` when it is ``None``."""
    paper = paper_inversion_settings(clf_cfg["dataset"], layer)
    model = PixelCNNConfig(image_shape=tuple(data.train.shape[1:]), likelihood=paper["likelihood"],
                           n_filters=int(n_filters), n_res=int(n_res), n_mix=paper["n_mix"],
                           dropout=float(paper["dropout"] if dropout is None else dropout),
                           context_shape=None if layer is None else tuple(context_shape),
                           context_dropout=paper["context_dropout"])
    return TrainConfig(model, objective="conditional_nll", dataset=clf_cfg["dataset"],
                       batch_size=min(int(batch_size), len(data.train)), steps=int(steps), lr=float(lr),
                       lr_decay=float(lr_decay), seed=int(seed), device=device)


def inversions(requests, data: Data, cache: ArtifactCache | None = None, device: str = "auto",
               **settings) -> list[tuple]:
    """The inversion models of several ``(classifier config, layer, snapshot)`` requests (``layer=None``: the
    unconditional model; ``snapshot=None``: the trained classifier), each trained on ``data.train`` and scored on
    ``data.test``: a list of ``(model on the CPU, CrossEntropy-like dict)`` in order. Models of one shape (the same
    layer of several classifiers or snapshots) train together as one stacked model (:func:`replab.train.train_group`),
    each stored as its own run. ``settings`` are :func:`inversion_run`'s (sizes, steps, rates, seed)."""
    cache = cache or ArtifactCache()
    requests = [tuple(r) for r in requests]
    jobs = []
    for clf_cfg, layer, snapshot in requests:
        clf = None if layer is None else classifier(clf_cfg, snapshot, cache, device)[0]
        if clf is not None and layer not in clf.shapes:
            raise ValueError(f"layer: the classifier has no layer {layer!r}; it has {list(clf.shapes)}")

        def contexts(images, clf=clf, layer=layer):
            return None if clf is None else clf.extract(data.full(images), layer)

        config = inversion_run(clf_cfg, layer, data, None if clf is None else clf.shapes[layer], device=device,
                               **settings)
        jobs.append((config, (data.train, contexts(data.train)), contexts(data.test)))
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


def _test_cross_entropy(run: TrainedRun, data: Data, context, cache: ArtifactCache, device: str) -> dict:
    """Eq. 11 on the test pairs, stored beside the run (a pass over the test set is not repeated)."""
    def compute():
        ce = cross_entropy(run.model, data.test, context, device=device)
        return ce.as_dict() | {"n_dims": ce.n_dims}

    key = {"run": run.key, "test": data_fingerprint((data.test, context))}
    return dict(cache.get_or_compute(CE_KIND, key, compute))


def inversion(clf_cfg: dict, layer: str | None, data: Data, snapshot: int | None = None, n_filters=8, n_res=1,
              dropout=None, steps=200, batch_size=16, lr=1e-3, lr_decay=0.9999, seed=0,
              cache: ArtifactCache | None = None, device: str = "auto"):
    """The PixelCNN++ p(x | h) of ``layer`` of a classifier (``layer=None``: the unconditional model of the same
    size), trained on ``data.train`` (on ``device``) and scored on ``data.test``: ``(model on the CPU,
    CrossEntropy-like dict)``. Likelihood, mixture size and context dropout follow the dataset
    (:func:`paper_inversion_settings`), and so does ``dropout`` when it is ``None``."""
    return inversions([(clf_cfg, layer, snapshot)], data, cache, device, n_filters=n_filters, n_res=n_res,
                      dropout=dropout, steps=steps, batch_size=batch_size, lr=lr, lr_decay=lr_decay, seed=seed)[0]


def mse_decoder(clf_cfg: dict, layer: str, data: Data, steps=300, batch_size=64, width=32, lr=1e-3, seed=0,
                cache: ArtifactCache | None = None, device: str = "auto") -> MSEDecoder:
    """The MSE decoder (Eq. 3) of ``layer``, trained on ``data.train`` (on ``device``) to output the coarse
    images; returned on the CPU."""
    cache = cache or ArtifactCache()
    clf, _ = classifier(clf_cfg, None, cache, device)
    if layer not in clf.shapes:
        raise ValueError(f"layer: the classifier has no layer {layer!r}; it has {list(clf.shapes)}")
    model = MSEDecoderConfig(tuple(clf.shapes[layer]), tuple(data.train.shape[1:]), width=int(width))
    config = TrainConfig(model, objective="reconstruction_mse", dataset=clf_cfg["dataset"],
                         batch_size=min(int(batch_size), len(data.train)), steps=int(steps), lr=float(lr),
                         seed=int(seed), device=device)
    run = train(config, cache, data=(data.train, clf.extract(data.full(data.train), layer)))
    return run.model.cpu().eval()


def ink_centroid(images: torch.Tensor) -> torch.Tensor:
    """The intensity-weighted centre (row, column) of each image (N, 1, H, W) or (..., H, W), in pixels."""
    x = images.float()
    h, w = x.shape[-2:]
    rows = torch.arange(h, dtype=torch.float32).view(h, 1)
    cols = torch.arange(w, dtype=torch.float32).view(1, w)
    mass = x.sum((-2, -1)).clamp_min(1e-8)
    return torch.stack([(x * rows).sum((-2, -1)) / mass, (x * cols).sum((-2, -1)) / mass], -1).squeeze(-2)


def position_error(images: torch.Tensor, samples: torch.Tensor, scale: float = 1.0) -> float:
    """Mean Euclidean distance, times ``scale``, between each image's ink centroid and its samples' ((N, C, H, W)
    and (N, S, C, H, W))."""
    if samples.ndim != images.ndim + 1 or samples.shape[0] != images.shape[0]:
        raise ValueError(f"samples: expected shape ({images.shape[0]}, S, ...), got {tuple(samples.shape)}")
    c = ink_centroid(images)                             # (N, 2)
    cs = ink_centroid(samples.flatten(0, 1)).view(samples.shape[0], samples.shape[1], 2)
    return float((cs - c[:, None]).norm(dim=-1).mean()) * scale


def nats_table(ces: dict, h_x: dict | None = None):
    """A DataFrame of cross-entropies per layer: nats/image, ± stderr, bits/dim, NCE and (with ``h_x``, the
    unconditional model's) the information bound H*(x) − H*(x|h)."""
    import pandas as pd

    rows = []
    for layer, ce in ces.items():
        row = {"layer": layer, "nats/image": ce["nats_per_image"], "stderr": ce["stderr_nats"],
               "bits/dim": ce["bits_per_dim"], "NCE (nats)": ce["nce_nats"]}
        if h_x is not None:
            row["I bound (nats)"] = h_x["nats_per_image"] - ce["nats_per_image"]
            row["I bound (bits/dim)"] = row["I bound (nats)"] / (ce["n_dims"] * math.log(2.0))
        rows.append(row)
    return pd.DataFrame(rows).set_index("layer")
