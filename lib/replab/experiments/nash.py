"""The experiments of Nash, Kushman & Williams (2019), shared by the four pages of ``notebooks/nash2019``.

Every model goes through :class:`replab.cache.ArtifactCache`, keyed by its configuration, so the pages share them:
the classifier is trained once (:func:`classifier`), one inversion model per layer (:func:`inversion`, plus the
unconditional model of the same size for H(x)), one MSE decoder per layer (:func:`mse_decoder`), and the
training-dynamics models invert classifier snapshots kept during the same training run.

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
from ..cache import ArtifactCache
from ..inversion import (Classifier, ClassifierConfig, MSEDecoder, PixelCNNConfig, PixelCNNpp, cross_entropy,
                         fit_classifier, fit_mse_decoder, fit_pixelcnn)
from ..inversion.fit import accuracy

__all__ = ["coarse", "upsample", "Data", "load", "is_colour", "paper_inversion_settings", "classifier_config", "classifier", "inversion", "mse_decoder",
           "ink_centroid", "position_error", "nats_table"]

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
    """The configuration (a plain dict, the cache key) of one classifier run; ``conv_channels=None`` takes the
    paper's (32, 32) for grey datasets and (64, 128) for colour ones."""
    if conv_channels is None:
        conv_channels = (64, 128) if is_colour(dataset) else (32, 32)
    return {"dataset": dataset, "variant": variant, "n_train": int(n_train), "factor": int(factor),
            "steps": int(steps), "batch_size": int(batch_size), "lr": float(lr), "dropout": float(dropout),
            "conv_channels": list(conv_channels), "fc_units": int(fc_units), "hidden_units": int(hidden_units),
            "seed": int(seed), "snapshots": sorted(int(s) for s in snapshots), "n_test": int(n_test)}


def _build_classifier(cfg: dict) -> Classifier:
    return Classifier(ClassifierConfig(image_shape=_check_dataset(cfg["dataset"]), variant=cfg["variant"],
                                       conv_channels=tuple(cfg["conv_channels"]), fc_units=cfg["fc_units"],
                                       hidden_units=cfg["hidden_units"], dropout=cfg["dropout"]))


def classifier(cfg: dict, snapshot: int | None = None, cache: ArtifactCache | None = None, device: str = "auto"):
    """The trained classifier of ``cfg`` (or its state after ``snapshot`` updates), in eval mode on the CPU, with
    its test accuracy: ``(model, accuracy)``. Training runs on ``device``."""
    cache = cache or ArtifactCache()

    def compute():
        d = load(cfg["dataset"], cfg["n_train"], cfg["n_test"], cfg["factor"], cfg["seed"])
        torch.manual_seed(cfg["seed"])
        model = _build_classifier(cfg)
        hist = fit_classifier(model, d.full(d.train), d.train_labels, n_steps=cfg["steps"],
                              batch_size=cfg["batch_size"], lr=cfg["lr"], seed=cfg["seed"], device=device,
                              snapshot_steps=cfg["snapshots"])
        model.cpu()
        snaps = {str(k): v for k, v in hist["snapshots"].items()}
        accs = {}
        for k, state in snaps.items():
            m = _build_classifier(cfg)
            m.load_state_dict(state)
            accs[k] = accuracy(m, d.full(d.test), d.test_labels)
        return {"state": model.state_dict(), "snapshots": snaps, "test_acc": accuracy(model, d.full(d.test),
                                                                                       d.test_labels),
                "snapshot_acc": accs}

    out = cache.get_or_compute("nash-classifier", cfg, compute)
    model = _build_classifier(cfg)
    if snapshot is None:
        model.load_state_dict(out["state"])
        acc = out["test_acc"]
    else:
        if str(snapshot) not in out["snapshots"]:
            raise ValueError(f"snapshot: no snapshot after {snapshot} updates; kept {sorted(out['snapshots'])}")
        model.load_state_dict(out["snapshots"][str(snapshot)])
        acc = out["snapshot_acc"][str(snapshot)]
    return model.eval(), float(acc)


def inversion(clf_cfg: dict, layer: str | None, data: Data, snapshot: int | None = None, n_filters=8, n_res=1,
              dropout=None, steps=200, batch_size=16, lr=1e-3, lr_decay=0.9999, seed=0,
              cache: ArtifactCache | None = None, device: str = "auto"):
    """The PixelCNN++ p(x | h) of ``layer`` of a classifier (``layer=None``: the unconditional model of the same
    size), trained on ``data.train`` (on ``device``) and scored on ``data.test``: ``(model on the CPU,
    CrossEntropy-like dict)``. Likelihood, mixture size and context dropout follow the dataset
    (:func:`paper_inversion_settings`), and so does ``dropout`` when it is ``None``."""
    cache = cache or ArtifactCache()
    paper = paper_inversion_settings(clf_cfg["dataset"], layer)
    inv = {"n_filters": int(n_filters), "n_res": int(n_res),
           "dropout": float(paper["dropout"] if dropout is None else dropout), "steps": int(steps),
           "batch_size": int(batch_size), "lr": float(lr), "lr_decay": float(lr_decay), "seed": int(seed),
           "likelihood": paper["likelihood"], "n_mix": paper["n_mix"], "context_dropout": paper["context_dropout"]}
    key = {"classifier": clf_cfg if layer is not None else {"dataset": clf_cfg["dataset"],
                                                            "n_train": clf_cfg["n_train"],
                                                            "factor": clf_cfg["factor"], "seed": clf_cfg["seed"],
                                                            "n_test": clf_cfg["n_test"]},
           "layer": layer, "snapshot": snapshot, **inv, "n_train": len(data.train), "n_test": len(data.test)}
    ctx_shape = None
    if layer is not None:
        clf, _ = classifier(clf_cfg, snapshot, cache, device)
        ctx_shape = tuple(clf.shapes[layer])
    pcfg = PixelCNNConfig(image_shape=tuple(data.train.shape[1:]), likelihood=inv["likelihood"],
                          n_filters=inv["n_filters"], n_res=inv["n_res"], n_mix=inv["n_mix"], dropout=inv["dropout"],
                          context_shape=ctx_shape, context_dropout=inv["context_dropout"])

    def contexts(images):
        return None if layer is None else clf.extract(data.full(images), layer)

    def compute():
        torch.manual_seed(inv["seed"])
        model = PixelCNNpp(pcfg)
        fit_pixelcnn(model, data.train, contexts(data.train), n_steps=inv["steps"], batch_size=inv["batch_size"],
                     lr=inv["lr"], lr_decay=inv["lr_decay"], seed=inv["seed"], device=device)
        ce = cross_entropy(model, data.test, contexts(data.test), device=device)
        model.cpu()
        return {"state": model.state_dict(), "ce": ce.as_dict() | {"n_dims": ce.n_dims}}

    out = cache.get_or_compute("nash-inversion", key, compute)
    model = PixelCNNpp(pcfg)
    model.load_state_dict(out["state"])
    return model.eval(), dict(out["ce"])


def mse_decoder(clf_cfg: dict, layer: str, data: Data, steps=300, batch_size=64, width=32, lr=1e-3, seed=0,
                cache: ArtifactCache | None = None, device: str = "auto") -> MSEDecoder:
    """The MSE decoder (Eq. 3) of ``layer``, trained on ``data.train`` (on ``device``) to output the coarse
    images; returned on the CPU."""
    cache = cache or ArtifactCache()
    key = {"classifier": clf_cfg, "layer": layer, "steps": int(steps), "batch_size": int(batch_size),
           "width": int(width), "lr": float(lr), "seed": int(seed), "n_train": len(data.train)}
    clf, _ = classifier(clf_cfg, None, cache, device)

    def build():
        torch.manual_seed(int(seed))
        return MSEDecoder(clf.shapes[layer], tuple(data.train.shape[1:]), width=int(width))

    def compute():
        dec = build()
        fit_mse_decoder(dec, data.train, clf.extract(data.full(data.train), layer), n_steps=int(steps),
                        batch_size=int(batch_size), lr=float(lr), seed=int(seed), device=device)
        return dec.cpu().state_dict()

    dec = build()
    dec.load_state_dict(cache.get_or_compute("nash-mse", key, compute))
    return dec.eval()


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
