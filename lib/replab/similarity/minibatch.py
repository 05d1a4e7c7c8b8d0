"""Minibatch linear CKA (Nguyen, Raghu & Kornblith 2021, Eq. 2) for example counts that do not fit in memory.

For minibatches ``X_i, Y_i`` of size b (≥ 4), the estimator is::

    CKA_mb = Σᵢ HSIC₁(Kᵢ, Lᵢ) / sqrt(Σᵢ HSIC₁(Kᵢ, Kᵢ) · Σᵢ HSIC₁(Lᵢ, Lᵢ))

with HSIC₁ the unbiased estimator of Song et al. (2012). Averaging unbiased batch estimates gives an unbiased
estimate of the population HSIC, so the value does not depend on the batch size the way the biased estimator
would; it converges to the full-data *debiased* CKA, not to the biased one.

HSIC₁ is invariant to shifting the features, but its formula subtracts large nearly equal terms when they are
not centred: each batch's features are centred (in float64) before anything else (measured in float32:
error 1.24 without, 2e-8 with). Each batch then forms each layer's b×b Gram once, in float64, U-centres it
(Székely & Rizzo 2014) and gets every ``n(n-3)·HSIC₁`` of the batch as one product of the stacked flattened Grams:
``Lx + Ly`` Grams per batch instead of two per pair of layers.
"""
from __future__ import annotations

import math
from typing import Iterable

import pandas as pd
import torch

from ..runtime import get_device, progress
from .._validation import check_min_rows
from ._inputs import DEBIASED_WHY, _as_real_2d, as_named_layers, center_features, prepare_scaled
from .cka import _gram_float64, u_center_

__all__ = ["MinibatchCKA", "minibatch_cka"]

_EPS = {torch.float32: torch.finfo(torch.float32).eps, torch.float64: torch.finfo(torch.float64).eps}


def _batch_gram(t: torch.Tensor, name: str, out: torch.Tensor) -> int:
    """Write the U-centred float64 Gram of one layer's batch into ``out`` (b×b) and return the power ``s`` of two
    the batch was scaled by (``x · 2^s``; 0 unless its magnitude is far from 1).

    The Gram is formed from centred features in the batch's dtype (float32 stays float32: measured 1e-9 from
    float64); its U-centring and every sum after it run in float64. Validation reads the Gram's trace instead of a
    pass over the batch: NaN and inf reach it, and so does a constant batch (a trace at rounding level of the
    column means) or one whose squares leave the safe range; only then does the batch go through
    :func:`prepare_scaled`, which names the problem or rescales it.
    """
    check_min_rows(t, 4, name, DEBIASED_WHY)
    if t.shape[1] == 0 or not t.is_floating_point() or t.dtype not in _EPS:
        t, s = prepare_scaled(t, name, min_rows=4, why=DEBIASED_WHY, dtype=None)
    else:
        s = 0
    mean = t.mean(dim=0, keepdim=True)
    # Wide batches: the upper block triangle in blocks of 64 rows (measured 20% faster than one product at b = 256)
    block = 64 if t.shape[1] >= 1024 else 256
    g = _gram_float64(t - mean, block=block, out=out)
    b, p = t.shape
    tr = float(torch.diagonal(g).sum())
    r = 64 * _EPS[t.dtype] * float(mean.abs().max())
    rounding = b * p * r * r  # (a product, not **, so that a huge mean gives inf rather than an error)
    if not (math.isfinite(tr) and 2.0 ** -60 < tr / (b * p) < 2.0 ** 60 and tr > rounding):
        t, s2 = prepare_scaled(t, name, min_rows=4, why=DEBIASED_WHY, dtype=None)
        s += s2
        g = _gram_float64(center_features(t), block=block, out=out)
    u_center_(g)
    return s



class MinibatchCKA:
    """Accumulates the minibatch CKA of every layer of ``xs`` with every layer of ``ys`` over batches.

    Use ``update(xs_batch, ys_batch)`` per batch (dicts name -> tensor of shape (b, ...), or lists), then
    ``result()`` for the table. Pass ``ys_batch=None`` to compare ``xs`` with itself.

    Parameters
    ----------
    device : "auto", "cpu" or "cuda"
    """

    def __init__(self, device: str | torch.device = "auto"):
        self.device = device

    def reset(self) -> "MinibatchCKA":
        self.cross_ = None
        self.self_x_ = None
        self.self_y_ = None
        self.n_batches_ = 0
        self.n_examples_ = 0
        self.widths_ = {}
        return self

    def _layers(self, batch, what: str) -> tuple[list[str], torch.Tensor, torch.Tensor]:
        """Layer names, the stacked U-centred float64 Grams (one row per layer) and each layer's scale exponent."""
        named = as_named_layers(batch, what)
        dev = get_device(self.device)
        layers = {k: _as_real_2d(v, f"layer {k!r} of {what}").to(dev) for k, v in named.items()}
        rows = {k: t.shape[0] for k, t in layers.items()}
        if len(set(rows.values())) > 1:
            raise ValueError(f"{what}: layers hold different numbers of examples in one batch: {rows}")
        widths = {k: t.shape[1] for k, t in layers.items()}
        first = self.widths_.setdefault(what, widths)
        for k, w in widths.items():
            if k in first and first[k] != w:
                raise ValueError(f"layer {k!r} of {what}: has {w} features in this batch but {first[k]} in the first "
                                 "batch; every batch must hold the same layers")
        b = next(iter(rows.values()))
        grams = torch.empty(len(layers), b * b, dtype=torch.float64, device=dev)
        exponents = torch.zeros(len(layers), dtype=torch.int64, device=dev)
        for i, (k, t) in enumerate(layers.items()):
            # A batch scaled by 2^s (prepare_scaled: only far from 1) has its HSIC terms scaled by 2^2s per layer.
            exponents[i] = -_batch_gram(t, f"layer {k!r} of {what}", grams[i].view(b, b))
        return list(layers), grams, exponents

    def update(self, xs_batch, ys_batch=None) -> "MinibatchCKA":
        """Add one minibatch (the same examples in ``xs_batch`` and ``ys_batch``)."""
        if not hasattr(self, "n_batches_"):
            self.reset()
        names_x, gx, ex = self._layers(xs_batch, "xs")
        names_y, gy, ey = (names_x, gx, ex) if ys_batch is None else self._layers(ys_batch, "ys")
        nx, ny = round(gx.shape[1] ** 0.5), round(gy.shape[1] ** 0.5)
        if nx != ny:
            raise ValueError(f"xs and ys must hold the same examples in each batch, got {nx} and {ny} rows")
        if self.n_batches_ and (names_x != self.names_x_ or names_y != self.names_y_):
            raise ValueError("update: the layer names changed between batches")
        self.names_x_, self.names_y_ = names_x, names_y
        cross = gx @ gy.T  # every n(n-3)·HSIC₁(K, L) of the batch in one float64 product
        sx, sy = gx.square().sum(dim=1), gy.square().sum(dim=1)
        scale = 1.0 / (nx * (nx - 3))  # HSIC₁ itself, so batches of different sizes weigh alike
        # The sums are kept relative to each layer's largest exponent so far: a batch scaled by 2^-e has its HSIC
        # terms scaled by 2^-2e per layer; moving the reference up multiplies the older sums by a power of two ≤ 1.
        if self.cross_ is None:
            self.exp_x_, self.exp_y_ = ex, ey
            self.cross_ = torch.zeros_like(cross)
            self.self_x_, self.self_y_ = torch.zeros_like(sx), torch.zeros_like(sy)
        top_x, top_y = torch.maximum(self.exp_x_, ex), torch.maximum(self.exp_y_, ey)
        old_x, old_y = 2 * (self.exp_x_ - top_x), 2 * (self.exp_y_ - top_y)
        new_x, new_y = 2 * (ex - top_x), 2 * (ey - top_y)
        two = torch.tensor(2.0, dtype=torch.float64, device=cross.device)  # float64 powers: 2^-k stays exact
        self.cross_ = (self.cross_ * two ** (old_x[:, None] + old_y[None, :])
                       + cross * scale * two ** (new_x[:, None] + new_y[None, :]))
        self.self_x_ = self.self_x_ * two ** (2 * old_x) + sx * scale * two ** (2 * new_x)
        self.self_y_ = self.self_y_ * two ** (2 * old_y) + sy * scale * two ** (2 * new_y)
        self.exp_x_, self.exp_y_ = top_x, top_y
        self.n_batches_ += 1
        self.n_examples_ += nx
        return self

    def result(self) -> pd.DataFrame:
        """The minibatch CKA table of shape (len(xs), len(ys))."""
        if not getattr(self, "n_batches_", 0):
            raise ValueError("MinibatchCKA: no batch was added; call update() first")
        values = self.cross_ / torch.sqrt(torch.outer(self.self_x_, self.self_y_))
        return pd.DataFrame(values.cpu().numpy(), index=self.names_x_, columns=self.names_y_)


def minibatch_cka(batches: Iterable, device: str | torch.device = "auto") -> float:
    """Minibatch linear CKA of two layers streamed as ``(x_batch, y_batch)`` pairs (e.g. from a loader)."""
    acc = MinibatchCKA(device=device)
    for item in progress(batches, desc="minibatch CKA"):
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise ValueError("batches: expected an iterable of (x_batch, y_batch) pairs")
        acc.update({"x": item[0]}, {"y": item[1]})
    return float(acc.result().iloc[0, 0])
