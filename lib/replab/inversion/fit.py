"""Training loops of the inversion study (Nash et al., 2019, Appendix A): the classifiers, the PixelCNN++
inversion models and the MSE baseline.

One small loop (:func:`_train`) serves all three: Adam, a per-update learning-rate decay, shuffled mini-batches
drawn from a seeded generator (same seed, same numbers), optional evaluation every ``eval_every`` updates with
early stopping (the parameters of the best evaluation are restored), progress through
:func:`replab.runtime.progress`. Paper settings: classifiers Adam 3e-4; inversion models Adam 1e-3 with decay
0.9999 per update, 250,000 updates at most.
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import torch
import torch.nn.functional as F

from .._validation import check_same_rows
from ..runtime import get_device, progress, seed_everything
from .classifier import to_float_images
from .likelihoods import check_images

__all__ = ["fit_classifier", "fit_pixelcnn", "fit_mse_decoder", "accuracy", "fit_layer_inversion", "fit_layer_mse"]


def _check_steps(n_steps, batch_size, n):
    if int(n_steps) < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if n < 1:
        raise ValueError("the training set is empty")


def _batches(n: int, batch_size: int, n_steps: int, gen: torch.Generator):
    """Indices of ``n_steps`` mini-batches: reshuffled epochs, the last partial batch of each epoch dropped."""
    batch_size = min(batch_size, n)
    perm, pos = torch.randperm(n, generator=gen), 0
    for _ in range(n_steps):
        if pos + batch_size > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        yield perm[pos:pos + batch_size]
        pos += batch_size


def _train(model, loss_fn: Callable, n: int, n_steps: int, batch_size: int, lr: float, lr_decay: float, seed: int,
           device, evaluate: Callable | None = None, eval_every: int | None = None, higher_is_better=False,
           snapshot_steps=(), desc="training") -> dict:
    """Run ``n_steps`` Adam updates of ``loss_fn(model, idx, device)``; return the history dict."""
    _check_steps(n_steps, batch_size, n)
    gen = seed_everything(seed)
    dev = get_device(device)
    model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=lr_decay) if lr_decay != 1.0 else None
    hist = {"step": [], "loss": [], "eval_step": [], "eval": [], "snapshots": {}}
    best, best_state = None, None
    snapshot_steps = set(int(s) for s in snapshot_steps)

    def snap(step):
        if step in snapshot_steps:
            hist["snapshots"][step] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def check(step):
        nonlocal best, best_state
        value = float(evaluate(model))
        model.train()
        hist["eval_step"].append(step), hist["eval"].append(value)
        if best is None or (value > best if higher_is_better else value < best):
            best, best_state = value, copy.deepcopy(model.state_dict())

    snap(0)
    for step, idx in enumerate(progress(_batches(n, batch_size, n_steps, gen), desc=desc, total=n_steps), 1):
        loss = loss_fn(model, idx, dev)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{desc}: the loss became {float(loss.detach())} at update {step}; lower lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        hist["step"].append(step), hist["loss"].append(float(loss.detach()))
        snap(step)
        if evaluate is not None and eval_every and (step % eval_every == 0 or step == n_steps):
            check(step)
    if best_state is not None:
        model.load_state_dict(best_state)
        hist["best_eval"] = best
    model.eval()
    return hist


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


def fit_classifier(classifier, images: torch.Tensor, labels: torch.Tensor, n_steps: int = 1000,
                   batch_size: int = 64, lr: float = 3e-4, seed: int = 0, device: str = "auto",
                   val_images: torch.Tensor | None = None, val_labels: torch.Tensor | None = None,
                   eval_every: int | None = None, snapshot_steps=()) -> dict:
    """Cross-entropy training with Adam (Appendix A); early stopping on validation accuracy when given.

    ``snapshot_steps`` keeps CPU state dicts after those update counts (0 = the initialisation), for the
    training-dynamics study of Section 5.3; they are in ``history["snapshots"]``."""
    check_same_rows(images, labels, ("images", "labels"))
    labels = torch.as_tensor(labels).long()

    def loss_fn(model, idx, dev):
        return F.cross_entropy(model(to_float_images(images[idx]).to(dev)), labels[idx].to(dev))

    evaluate = None
    if val_images is not None:
        evaluate = lambda m: accuracy(m, val_images, torch.as_tensor(val_labels).long())  # noqa: E731
    return _train(classifier, loss_fn, len(images), n_steps, batch_size, lr, 1.0, seed, device, evaluate,
                  eval_every, higher_is_better=True, snapshot_steps=snapshot_steps, desc="classifier")


def fit_pixelcnn(model, images: torch.Tensor, context: torch.Tensor | None = None, n_steps: int = 1000,
                 batch_size: int = 64, lr: float = 1e-3, lr_decay: float = 0.9999, seed: int = 0,
                 device: str = "auto", val_images: torch.Tensor | None = None,
                 val_context: torch.Tensor | None = None, eval_every: int | None = None,
                 initialize: bool = True, bf16: bool = False) -> dict:
    """Maximum likelihood (Eq. 4) for a :class:`~replab.inversion.pixelcnn.PixelCNNpp` on 8-bit ``images``.

    The loss is the mean NLL in nats per dimension. ``initialize`` runs the data-dependent weight-norm
    initialisation on the first batch; ``bf16`` runs the forward pass under bfloat16 autocast (the likelihood
    is computed in float32). With validation data, the parameters with the lowest validation NLL are kept and
    ``history["eval"]`` holds the validation nats per image."""
    images = check_images(images, model.config.image_shape[0], "images").to(torch.uint8)
    if context is not None:
        check_same_rows(images, context, ("images", "context"))
    n_dims = images[0].numel()
    dev = get_device(device)
    if initialize and n_steps > 0:
        gen = torch.Generator().manual_seed(int(seed))
        idx = torch.randperm(len(images), generator=gen)[:min(len(images), max(batch_size, 16))]
        model.to(dev).initialize(images[idx].to(dev), None if context is None else context[idx].to(dev))

    def loss_fn(m, idx, d):
        x = images[idx].to(d).long()
        ctx = None if context is None else context[idx].to(d)
        with torch.autocast(device_type=d.type, dtype=torch.bfloat16, enabled=bf16):
            out = m(x, ctx)
        return -m.likelihood.log_prob(out.float(), x).mean() / n_dims

    evaluate = None
    if val_images is not None:
        from .information import cross_entropy
        evaluate = lambda m: cross_entropy(m, val_images, val_context, device=dev).nats_per_image  # noqa: E731
    return _train(model, loss_fn, len(images), n_steps, batch_size, lr, lr_decay, seed, dev, evaluate, eval_every,
                  desc="inversion model")


def fit_mse_decoder(decoder, images: torch.Tensor, context: torch.Tensor, n_steps: int = 1000,
                    batch_size: int = 64, lr: float = 1e-3, seed: int = 0, device: str = "auto",
                    val_images: torch.Tensor | None = None, val_context: torch.Tensor | None = None,
                    eval_every: int | None = None) -> dict:
    """Eq. 3: minimise the mean squared error between images (scaled to [0, 1]) and ``decoder(context)``."""
    check_same_rows(images, context, ("images", "context"))

    def mse(m, x, h, d):
        return F.mse_loss(m(h.to(d)), to_float_images(x).to(d))

    evaluate = None
    if val_images is not None:
        def evaluate(m):
            with torch.no_grad():
                m.eval()
                d = next(m.parameters()).device
                return math.fsum(float(mse(m, val_images[i:i + 500], val_context[i:i + 500], d)) * len(
                    val_images[i:i + 500]) for i in range(0, len(val_images), 500)) / len(val_images)
    return _train(decoder, lambda m, idx, d: mse(m, images[idx], context[idx], d), len(images), n_steps,
                  batch_size, lr, 1.0, seed, device, evaluate, eval_every, desc="MSE decoder")


def fit_layer_inversion(classifier, layer: str | None, images: torch.Tensor, n_steps: int = 1000,
                        val_images: torch.Tensor | None = None, config=None, seed: int = 0, device: str = "auto",
                        **train_kwargs):
    """Build and train the inversion model p_θ(x | h) of one classifier layer (``None``: the unconditional model
    of the same size, for H(x)); returns ``(model, history)``.

    ``config`` is a :class:`~replab.inversion.pixelcnn.PixelCNNConfig` (or a dict of its fields) whose
    ``image_shape`` and ``context_shape`` are filled in here; other keyword arguments go to :func:`fit_pixelcnn`.
    """
    from dataclasses import asdict, is_dataclass, replace

    from .pixelcnn import PixelCNNConfig, PixelCNNpp

    fields = asdict(config) if is_dataclass(config) else dict(config or {})
    if layer is not None and layer not in classifier.shapes:
        raise ValueError(f"layer: the classifier has no layer {layer!r}; it has {list(classifier.shapes)}")
    context_shape = None if layer is None else tuple(classifier.shapes[layer])
    cfg = replace(PixelCNNConfig(**fields), image_shape=tuple(images.shape[1:]), context_shape=context_shape)
    torch.manual_seed(seed)
    model = PixelCNNpp(cfg)
    ctx = None if layer is None else classifier.extract(images, layer)
    val_ctx = None if layer is None or val_images is None else classifier.extract(val_images, layer)
    hist = fit_pixelcnn(model, images, ctx, n_steps=n_steps, seed=seed, device=device, val_images=val_images,
                        val_context=val_ctx, **train_kwargs)
    return model, hist


def fit_layer_mse(classifier, layer: str, images: torch.Tensor, n_steps: int = 1000, width: int = 64,
                  seed: int = 0, device: str = "auto", **train_kwargs):
    """Build and train the MSE decoder (Eq. 3) of one classifier layer; returns ``(decoder, history)``."""
    from .baseline import MSEDecoder

    if layer not in classifier.shapes:
        raise ValueError(f"layer: the classifier has no layer {layer!r}; it has {list(classifier.shapes)}")
    torch.manual_seed(seed)
    decoder = MSEDecoder(classifier.shapes[layer], tuple(images.shape[1:]), width=width)
    hist = fit_mse_decoder(decoder, images, classifier.extract(images, layer), n_steps=n_steps, seed=seed,
                           device=device, **train_kwargs)
    return decoder, hist
