"""Input checks with one message style: what was expected, what was given, and for which argument."""
from __future__ import annotations

import torch

__all__ = ["as_tensor_2d", "check_finite", "check_min_rows", "check_same_rows"]


def as_tensor_2d(x, name: str = "x", dtype: torch.dtype | None = None) -> torch.Tensor:
    """Return ``x`` as a 2-D tensor (examples × features), flattening trailing dimensions."""
    t = torch.as_tensor(x) if not isinstance(x, torch.Tensor) else x
    if t.ndim < 2:
        raise ValueError(f"{name}: expected a matrix of shape (n_examples, n_features), got shape {tuple(t.shape)}")
    if t.ndim > 2:
        t = t.reshape(t.shape[0], -1)
    if dtype is not None:
        t = t.to(dtype)
    elif not torch.is_floating_point(t):
        t = t.to(torch.get_default_dtype())
    return t


def check_finite(t: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Raise if ``t`` holds NaN or infinite values."""
    if torch.is_floating_point(t) and not torch.isfinite(t).all():
        bad = "NaN" if torch.isnan(t).any() else "infinite"
        raise ValueError(f"{name}: contains {bad} values")
    return t


def check_min_rows(t: torch.Tensor, n_min: int, name: str = "x", why: str = "") -> torch.Tensor:
    """Raise if ``t`` has fewer than ``n_min`` rows (examples)."""
    if t.shape[0] < n_min:
        extra = f" ({why})" if why else ""
        raise ValueError(f"{name}: needs at least {n_min} examples{extra}, got {t.shape[0]}")
    return t


def check_same_rows(x: torch.Tensor, y: torch.Tensor, names: tuple[str, str] = ("x", "y")) -> None:
    """Raise if ``x`` and ``y`` do not have the same number of rows (examples)."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same number of examples (rows), "
            f"got {x.shape[0]} and {y.shape[0]}")
