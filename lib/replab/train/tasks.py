"""Objectives whose target comes with the data, and the metric a run is evaluated (and early-stopped) by.

A *conditional* objective learns from pairs (x, h): images x, batched as floats in [0, 1] like every image of the
engine, and a float target h of shape (N, ...) (for example the representation a model inverts), or no target at
all (an unconditional model). Its loss is ``loss(model, x, h, noise) -> {"loss": scalar, ...}``; ``noise`` is the
step's :class:`replab.noise.HashNoise` (dropout layers also find it through :func:`replab.noise.current`).

* ``"conditional_nll"``: maximum likelihood of 8-bit images, the mean of −log p(x | h) in nats per dimension, for a
  density model whose ``model(levels, h)`` returns the parameters of ``model.likelihood`` and
  ``model.likelihood.log_prob(parameters, levels)`` the per-image log-likelihood of the integer images
  (Nash et al., 2019, Eq. 4, with a PixelCNN++). The integer levels are ``round(255 x)``, exact for uint8 data.
  Evaluated by the held-out NLL in nats per image (lower is better; Eq. 11).
* ``"reconstruction_mse"``: the mean squared error between x and ``model(h)`` (Nash et al., Eq. 3). Evaluated
  by the held-out mean squared error (lower is better).

Classifiers (``cross_entropy``, ``binary_cross_entropy``) are evaluated by their accuracy (higher is better).

A model that defines ``initialize(x, h)`` (data-dependent initialisation, e.g. of weight-normalised layers) gets
one call on a seeded first batch before training (:func:`init_batch`), with ``x`` as the objective feeds the model
(:attr:`Conditional.model_input`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..runtime import generator as _generator

__all__ = ["Conditional", "Metric", "CONDITIONAL_OBJECTIVES", "CLASSIFIER_METRICS", "metric", "to_levels",
           "init_batch"]


def to_levels(x: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] back as the 8-bit integers 0..255 they came from (int64): ``round(255 x)``."""
    return (x * 255.0).round().long()


@dataclass(frozen=True)
class Metric:
    """An evaluation: ``fn(model, x, h) -> (B,)`` per-example values whose mean over the held-out set is reported
    under ``name``; ``higher_is_better`` says which way early stopping keeps."""
    name: str
    higher_is_better: bool
    fn: Callable


@dataclass(frozen=True)
class Conditional:
    """A conditional objective (see the module docstring): its loss, its evaluation, what it feeds the model."""
    loss: Callable
    metric: Metric
    model_input: Callable = staticmethod(lambda x: x)
    needs_uint8: bool = False


def _nll(model, levels: torch.Tensor, h) -> torch.Tensor:
    return -model.likelihood.log_prob(model(levels, h), levels)


def _conditional_nll(model, x, h, noise) -> dict:
    levels = to_levels(x)
    return {"loss": _nll(model, levels, h).mean() / math.prod(levels.shape[1:])}


def _reconstruction_mse(model, x, h, noise) -> dict:
    return {"loss": F.mse_loss(model(h), x)}


CONDITIONAL_OBJECTIVES: dict[str, Conditional] = {
    "conditional_nll": Conditional(
        loss=_conditional_nll,
        metric=Metric("nll_nats_per_image", False, lambda model, x, h: _nll(model, to_levels(x), h)),
        model_input=to_levels, needs_uint8=True),
    "reconstruction_mse": Conditional(
        loss=_reconstruction_mse,
        metric=Metric("mse", False, lambda model, x, h: (model(h) - x).pow(2).flatten(1).mean(1))),
}

# classifier objectives -> their evaluation: the fraction of examples (of attributes, multi-label) predicted right
CLASSIFIER_METRICS: dict[str, Metric] = {
    "cross_entropy": Metric("accuracy", True, lambda model, x, y: (model(x).argmax(-1) == y).float()),
    "binary_cross_entropy": Metric("accuracy", True,
                                   lambda model, x, y: ((model(x) > 0).float() == y).float().flatten(1).mean(1)),
}


def metric(objective: str) -> Metric | None:
    """The evaluation of ``objective``, or None when it has none (the VAE objectives)."""
    if objective in CONDITIONAL_OBJECTIVES:
        return CONDITIONAL_OBJECTIVES[objective].metric
    return CLASSIFIER_METRICS.get(objective)


def init_batch(n: int, batch_size: int, seed: int) -> torch.Tensor:
    """Indices of the batch a data-dependent initialisation sees: ``max(batch_size, 16)`` examples (at most
    ``n``) of a permutation drawn from ``seed``."""
    return torch.randperm(n, generator=_generator(seed))[:min(n, max(batch_size, 16))]
