"""Shared input handling for the similarity metrics: validation with layer names, and centring in float64.

Every metric goes through :func:`prepare` so that bad input (NaN, inf, complex values, a constant layer, too few
examples, two layers with different numbers of examples) fails with one message style naming the layer, and so
that every finite input reaches the products at a scale where they neither overflow nor underflow.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import math

import numpy as np
import torch

from .._validation import as_tensor_2d, check_finite, check_min_rows, check_same_rows

__all__ = ["prepare", "prepare_pair", "center_features", "as_named_layers", "MIN_ROWS", "MIN_ROWS_WHY", "DEBIASED_WHY",
           "rows_needed", "times_pow2",
           "prepare_scaled"]

# With two examples every centred layer is one direction (x₁ - x̄ = -(x₂ - x̄)), so every centred Gram is a multiple
# of [[1, -1], [-1, 1]] and CKA and Procrustes are 1 for any two layers: three examples are the least that carry
# information.
MIN_ROWS = 3
MIN_ROWS_WHY = "with 2, every centred layer is a single direction and every score is 1"
DEBIASED_WHY = "the unbiased HSIC divides by n - 3"


def rows_needed(debiased: bool) -> tuple[int, str]:
    """The fewest examples an estimator needs and why: 4 for the unbiased HSIC, else :data:`MIN_ROWS`."""
    return (4, DEBIASED_WHY) if debiased else (MIN_ROWS, MIN_ROWS_WHY)

# Every metric is invariant to scaling a layer, so a layer whose largest magnitude lies outside this range is
# multiplied by a power of two (exact: no digit changes) that brings it near 1; its squares and products then stay
# far from float32's and float64's overflow and underflow (1e200 squared is inf, 1e-200 squared is 0).
_SAFE_EXPONENT = 32


def _as_real_2d(x, name: str) -> torch.Tensor:
    """:func:`as_tensor_2d`, refusing complex input (whose imaginary part a cast would silently drop)."""
    if (torch.is_tensor(x) and x.is_complex()) or (not torch.is_tensor(x) and np.iscomplexobj(x)):
        raise ValueError(f"{name}: has complex values; the similarity metrics are defined for real activations "
                         "(pass the real and imaginary parts as separate features)")
    return as_tensor_2d(x, name)


def times_pow2(t: torch.Tensor, k: int) -> torch.Tensor:
    """``t · 2^k`` in float64 (exact unless the result underflows), in two steps so that neither factor
    overflows even for subnormal ``t``."""
    half = k // 2
    return t.double() * math.ldexp(1.0, half) * math.ldexp(1.0, k - half)


def _scale_exponent(lo: torch.Tensor, hi: torch.Tensor) -> int:
    """``k`` such that ``2^k`` times the largest magnitude lies in [1, 2), when that magnitude lies outside
    [2⁻³², 2³²]; else 0."""
    top = torch.maximum(hi.abs().max(), lo.abs().max())
    exponent = int(torch.frexp(top).exponent)
    return 0 if -_SAFE_EXPONENT <= exponent <= _SAFE_EXPONENT else 1 - exponent


def prepare(x, name: str = "x", min_rows: int = MIN_ROWS, why: str = MIN_ROWS_WHY,
            dtype: torch.dtype | None = torch.float64, device: torch.device | None = None) -> torch.Tensor:
    """Validate one activation matrix and return it as a 2-D ``dtype`` tensor of shape (n_examples, n_features).

    ``dtype=None`` keeps float32 and float64 inputs as they are (other types become float64).

    Raises ``ValueError`` naming ``name`` for fewer than ``min_rows`` examples, NaN or infinite values, complex
    values, and a constant layer (every example has the same activations, so every kernel is zero after centring).
    A layer whose largest magnitude is beyond 2^±32 comes back multiplied by a power of two that brings it near 1
    (every metric is scale-invariant; the scaling is exact).
    """
    return prepare_scaled(x, name, min_rows, why, dtype, device)[0]


def prepare_scaled(x, name: str = "x", min_rows: int = MIN_ROWS, why: str = MIN_ROWS_WHY,
                   dtype: torch.dtype | None = torch.float64,
                   device: torch.device | None = None) -> tuple[torch.Tensor, int]:
    """:func:`prepare`, also returning the power ``k`` of the scaling: the result is ``x · 2^k`` (``k = 0`` for
    most inputs), for callers that combine several matrices of one layer (minibatches) and must weigh them."""
    t = _as_real_2d(x, name)
    if device is not None:
        t = t.to(device)
    check_min_rows(t, min_rows, name, why)
    if t.shape[1] == 0:
        raise ValueError(f"{name}: has no features (shape {tuple(t.shape)})")
    if dtype is not None or not t.is_floating_point() or t.dtype in (torch.float16, torch.bfloat16):
        t = t.to(dtype or torch.float64)
    # The column extremes give both checks: NaN and inf propagate into them, and a constant layer has equal
    # extremes in every column. (amin and amax reduce over rows in vectorised loops; aminmax(dim=0) is ~5× slower.)
    lo, hi = t.amin(dim=0), t.amax(dim=0)
    if not bool(torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        check_finite(t, name)
    if torch.equal(lo, hi):
        raise ValueError(f"{name}: is constant (every example has the same activations); "
                         "similarity is undefined for a constant layer")
    k = _scale_exponent(lo, hi)
    return (times_pow2(t, k).to(t.dtype) if k else t), k


def prepare_pair(x, y, names: tuple[str, str] = ("x", "y"), min_rows: int = MIN_ROWS, why: str = MIN_ROWS_WHY,
                 dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`prepare` both matrices and check they hold the same examples (rows)."""
    tx = _as_real_2d(x, names[0])
    ty = _as_real_2d(y, names[1])
    check_same_rows(tx, ty, names)
    return (prepare(tx, names[0], min_rows, why, dtype), prepare(ty, names[1], min_rows, why, dtype))


def center_features(x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Subtract the column means in float64 and return the result as ``dtype`` (default: ``x``'s dtype).

    Centring the features before forming a Gram matrix keeps float32 precision; centring the Gram afterwards
    subtracts large nearly equal numbers when activations have a large mean (measured: 1e-3 error in CKA).
    """
    mean = x.mean(dim=0, keepdim=True, dtype=torch.float64)
    if x.dtype == torch.float64 or dtype == torch.float64:
        return (x - mean).to(dtype or x.dtype)  # (float32 - float64 promotes in the subtraction: one pass)
    # A float32 subtraction of the float32-rounded mean is exact for values near the mean; what remains is a
    # column offset below 1e-7 of the mean, which centring the Gram afterwards removes exactly.
    return (x - mean.to(x.dtype)).to(dtype or x.dtype)


def as_named_layers(layers, what: str = "xs") -> dict[str, torch.Tensor]:
    """Turn a ``{name: matrix}`` mapping, or a list of matrices (named ``"0"``, ``"1"``, …), into an ordered dict."""
    if isinstance(layers, Mapping):
        out = {str(k): v for k, v in layers.items()}
    elif isinstance(layers, Sequence) and not isinstance(layers, (str, bytes)) and not torch.is_tensor(layers):
        out = {str(i): v for i, v in enumerate(layers)}
    else:
        raise ValueError(f"{what}: expected a list of activation matrices or a dict name -> matrix, "
                         f"got {type(layers).__name__}")
    if not out:
        raise ValueError(f"{what}: no layers given")
    return out
