"""Training of the inversion study (Nash et al., 2019, Appendix A) through the training engine
(:mod:`replab.train`): the classifiers, the PixelCNN++ inversion models and the MSE baseline.

Each helper describes its run as a :class:`~replab.train.TrainConfig` (the model's configuration, its objective,
Adam, the per-update learning-rate decay, the seed, the evaluation interval) and trains it with
:func:`replab.train.train` on the images and targets given in memory: cross-entropy for a classifier, the
conditional NLL (Eq. 4, ``"conditional_nll"``) for a PixelCNN++ given a layer's representation h, the squared
error of Eq. 3 (``"reconstruction_mse"``) for the MSE decoder. With validation data and ``eval_every``, the weights
of the best evaluation (validation accuracy, NLL in nats per image, MSE) are kept (early stopping). The run's
weights are copied into the model passed in, which is returned in eval mode. Paper settings: classifiers Adam
3e-4; inversion models Adam 1e-3 with decay 0.9999 per update, 250,000 updates at most.

``cache``: ``False`` (default) trains in memory; an :class:`~replab.cache.ArtifactCache` (or ``None``, the default
one) stores the run under its key and reuses it (what :mod:`.runs` does for the pages).
"""
from __future__ import annotations

from dataclasses import asdict, is_dataclass, replace

import torch

from .._validation import check_same_rows
from ..train import TrainConfig, TrainedRun, train
from .baseline import MSEDecoder, MSEDecoderConfig
from .likelihoods import check_images
from .pixelcnn import PixelCNNConfig, PixelCNNpp

__all__ = ["fit_classifier", "fit_pixelcnn", "fit_mse_decoder", "accuracy", "fit_layer_inversion", "fit_layer_mse",
           "history"]


@torch.no_grad()
def accuracy(classifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of ``images`` whose arg-max logit equals ``labels``, in eval mode."""
    was = classifier.training
    classifier.eval()
    dev = next(classifier.parameters()).device
    right = sum(int((classifier(images[i:i + batch_size].to(dev)).argmax(1).cpu() == labels[i:i + batch_size]).sum())
                for i in range(0, len(images), batch_size))
    classifier.train(was)
    return right / len(images)


def history(run: TrainedRun) -> dict:
    """A run's record as lists: ``step`` and ``loss`` per update, ``eval_step`` and ``eval`` per evaluation,
    ``snapshots`` {step: state dict}, ``best_eval`` (with evaluation), and the run itself under ``run``."""
    m = run.metrics
    evals = m[m["eval"].notna()] if "eval" in m else m.iloc[:0]
    hist = {"step": [int(s) for s in m["step"]], "loss": [float(v) for v in m.get("loss", [])],
            "eval_step": [int(s) for s in evals["step"]],
            "eval": [float(v) for v in evals["eval"]] if "eval" in evals else [],
            "snapshots": run.snapshots, "run": run}
    if run.best_eval is not None:
        hist["best_eval"] = run.best_eval
    return hist


def _uint8(images, n_channels: int | None, name: str) -> torch.Tensor:
    """8-bit images (integers in [0, 255], of any dtype) as uint8."""
    return check_images(images, n_channels, name).to(torch.uint8)


def _images(images, name: str) -> torch.Tensor:
    """Images as the engine takes them: floats in [0, 1] as they are, integers 0..255 as uint8."""
    images = torch.as_tensor(images)
    return images if images.is_floating_point() else _uint8(images, None, name)


def _fit(model, objective: str, data, val, n_steps: int, batch_size: int, lr: float, seed: int, device: str,
         eval_every: int | None, cache, lr_decay: float = 1.0, snapshot_steps=(), amp: bool = False) -> dict:
    """Train a fresh ``model.config`` model under ``objective`` on ``data`` (an (images, targets) pair), copy the
    weights into ``model`` and return its :func:`history`."""
    n = len(data[0])
    if n < 1:
        raise ValueError("images: the training set is empty")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    config = TrainConfig(model=model.config, objective=objective, dataset="in-memory", batch_size=min(batch_size, n),
                         steps=n_steps, lr=lr, lr_decay=lr_decay, seed=seed, snapshot_steps=tuple(snapshot_steps),
                         eval_every=eval_every if val is not None else None, device=device, amp=amp,
                         checkpoint_every=max(1, min(1000, n_steps)))
    run = train(config, cache, data=data, val_data=val if eval_every is not None else None)
    model.load_state_dict(run.model.state_dict())
    model.to(next(run.model.parameters()).device).eval()
    return history(run)


def fit_classifier(classifier, images: torch.Tensor, labels: torch.Tensor, n_steps: int = 1000,
                   batch_size: int = 64, lr: float = 3e-4, seed: int = 0, device: str = "auto",
                   val_images: torch.Tensor | None = None, val_labels: torch.Tensor | None = None,
                   eval_every: int | None = None, snapshot_steps=(), cache=False) -> dict:
    """Cross-entropy training with Adam (Appendix A) of a fresh classifier of ``classifier.config`` seeded with
    ``seed``; early stopping on validation accuracy when validation data and ``eval_every`` are given.

    ``snapshot_steps`` keeps CPU state dicts after those update counts (0 = the initialisation), for the
    training-dynamics study of Section 5.3; they are in ``history["snapshots"]``."""
    check_same_rows(images, labels, ("images", "labels"))
    labels = torch.as_tensor(labels).long()
    val = None if val_images is None else (_images(val_images, "val_images"), torch.as_tensor(val_labels).long())
    return _fit(classifier, "cross_entropy", (_images(images, "images"), labels), val, n_steps, batch_size, lr, seed,
                device, eval_every, cache, snapshot_steps=snapshot_steps)




def fit_pixelcnn(model, images: torch.Tensor, context: torch.Tensor | None = None, n_steps: int = 1000,
                 batch_size: int = 64, lr: float = 1e-3, lr_decay: float = 0.9999, seed: int = 0,
                 device: str = "auto", val_images: torch.Tensor | None = None,
                 val_context: torch.Tensor | None = None, eval_every: int | None = None, bf16: bool = False,
                 cache=False) -> dict:
    """Maximum likelihood (Eq. 4) of a fresh :class:`~replab.inversion.pixelcnn.PixelCNNpp` of ``model.config``
    seeded with ``seed``, on 8-bit ``images`` given ``context``.

    The loss is the mean NLL in nats per dimension. The weight-normalised layers get their data-dependent
    initialisation on a seeded first batch; ``bf16`` runs the network under bfloat16 autocast on CUDA (the
    likelihood in float32). With validation data and ``eval_every``, the parameters with the lowest validation
    NLL are kept and ``history["eval"]`` holds the validation nats per image."""
    c = model.config.image_shape[0]
    images = _uint8(images, c, "images")
    if context is not None:
        check_same_rows(images, context, ("images", "context"))
    val = None
    if val_images is not None:
        val = (_uint8(val_images, c, "val_images"), val_context)
    return _fit(model, "conditional_nll", (images, context), val, n_steps, batch_size, lr, seed, device, eval_every,
                cache, lr_decay=lr_decay, amp=bf16)


def fit_mse_decoder(decoder, images: torch.Tensor, context: torch.Tensor, n_steps: int = 1000,
                    batch_size: int = 64, lr: float = 1e-3, seed: int = 0, device: str = "auto",
                    val_images: torch.Tensor | None = None, val_context: torch.Tensor | None = None,
                    eval_every: int | None = None, cache=False) -> dict:
    """Eq. 3: minimise the mean squared error between images (scaled to [0, 1]) and ``decoder(context)``, for a
    fresh decoder of ``decoder.config`` seeded with ``seed``; early stopping on the validation MSE."""
    check_same_rows(images, context, ("images", "context"))
    val = None if val_images is None else (_images(val_images, "val_images"), val_context)
    return _fit(decoder, "reconstruction_mse", (_images(images, "images"), context), val, n_steps, batch_size, lr,
                seed, device, eval_every, cache)


def _check_layer(classifier, layer) -> None:
    if layer not in classifier.shapes:
        raise ValueError(f"layer: the classifier has no layer {layer!r}; it has {list(classifier.shapes)}")


def fit_layer_inversion(classifier, layer: str | None, images: torch.Tensor, n_steps: int = 1000,
                        val_images: torch.Tensor | None = None, config=None, seed: int = 0, device: str = "auto",
                        **train_kwargs):
    """Build and train the inversion model p_θ(x | h) of one classifier layer (``None``: the unconditional model
    of the same size, for H(x)); returns ``(model, history)``.

    ``config`` is a :class:`~replab.inversion.pixelcnn.PixelCNNConfig` (or a dict of its fields) whose
    ``image_shape`` and ``context_shape`` are filled in here; other keyword arguments go to :func:`fit_pixelcnn`.
    """
    fields = asdict(config) if is_dataclass(config) else dict(config or {})
    if layer is not None:
        _check_layer(classifier, layer)
    context_shape = None if layer is None else tuple(classifier.shapes[layer])
    cfg = replace(PixelCNNConfig(**fields), image_shape=tuple(images.shape[1:]), context_shape=context_shape)
    model = PixelCNNpp(cfg)
    ctx = None if layer is None else classifier.extract(images, layer)
    val_ctx = None if layer is None or val_images is None else classifier.extract(val_images, layer)
    hist = fit_pixelcnn(model, images, ctx, n_steps=n_steps, seed=seed, device=device, val_images=val_images,
                        val_context=val_ctx, **train_kwargs)
    return model, hist


def fit_layer_mse(classifier, layer: str, images: torch.Tensor, n_steps: int = 1000, width: int = 64,
                  seed: int = 0, device: str = "auto", **train_kwargs):
    """Build and train the MSE decoder (Eq. 3) of one classifier layer; returns ``(decoder, history)``."""
    _check_layer(classifier, layer)
    decoder = MSEDecoder(MSEDecoderConfig(tuple(classifier.shapes[layer]), tuple(images.shape[1:]), width))
    hist = fit_mse_decoder(decoder, images, classifier.extract(images, layer), n_steps=n_steps, seed=seed,
                           device=device, **train_kwargs)
    return decoder, hist
