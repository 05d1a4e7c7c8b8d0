"""Shared input handling for the similarity metrics: validation with layer names, and centring in float64.

Every metric goes through :func:`prepare` so that bad input (NaN, inf, a constant layer, too few examples, two
layers with different numbers of examples) fails with one message style naming the layer.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from .._validation import as_tensor_2d, check_finite, check_min_rows, check_same_rows

__all__ = ["prepare", "prepare_pair", "center_features", "as_named_layers"]


def prepare(x, name: str = "x", min_rows: int = 2, why: str = "", dtype: torch.dtype | None = torch.float64,
            device: torch.device | None = None) -> torch.Tensor:
    """Validate one activation matrix and return it as a 2-D ``dtype`` tensor of shape (n_examples, n_features).

    ``dtype=None`` keeps float32 and float64 inputs as they are (other types become float64).

    Raises ``ValueError`` naming ``name`` for fewer than ``min_rows`` examples, NaN or infinite values, and a
    constant layer (every example has the same activations, so every kernel is zero after centring).
    """
    t = as_tensor_2d(x, name)
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
    return t


def prepare_pair(x, y, names: tuple[str, str] = ("x", "y"), min_rows: int = 2, why: str = "",
                 dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`prepare` both matrices and check they hold the same examples (rows)."""
    tx = as_tensor_2d(x, names[0])
    ty = as_tensor_2d(y, names[1])
    check_same_rows(tx, ty, names)
    return (prepare(tx, names[0], min_rows, why, dtype), prepare(ty, names[1], min_rows, why, dtype))


def center_features(x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Subtract the column means in float64 and return the result as ``dtype`` (default: ``x``'s dtype).

    Centring the features before forming a Gram matrix keeps float32 precision; centring the Gram afterwards
    subtracts large nearly equal numbers when activations have a large mean (measured: 1e-3 error in CKA).
    """
    mean = x.mean(dim=0, keepdim=True, dtype=torch.float64)
    if x.dtype == torch.float64 or dtype == torch.float64:
        return (x.to(torch.float64) - mean).to(dtype or x.dtype)
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
