"""Orthogonal Procrustes similarity (Bonheme & Grześ 2023, Eqs. 3–5 and App. C; Ding et al. 2021).

Each activation matrix is centred column-wise and scaled to unit Frobenius norm; the Procrustes distance is then
``d² = ‖X‖²_F + ‖Y‖²_F - 2‖XᵀY‖_* = 2 - 2‖XᵀY‖_*`` and the similarity ``1 - d²/2 = ‖XᵀY‖_*`` lies in [0, 1].

The paper's code takes the nuclear norm of the p×q matrix XᵀY, which for early convolutional layers is
32,768 × 32,768. Here each layer is reduced once to a *factor* ``F`` of at most ``min(n, p)`` rows with
``FᵀF = XXᵀ``: ``F = Xᵀ`` when ``p ≤ n``, else the triangular factor ``R`` of the thin QR decomposition
``Xᵀ = QR``. Since ``XᵀY = Q_x (F_x F_yᵀ) Q_yᵀ`` with orthonormal columns in ``Q``, the singular values of
``XᵀY`` are those of the small matrix ``F_x F_yᵀ`` (at most n × n), and no p×p matrix is ever formed.
"""
from __future__ import annotations

import torch

from ._inputs import center_features, prepare_pair

__all__ = ["procrustes_similarity", "procrustes_distance", "procrustes_factor", "nuclear_norm_from_factors"]


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Centre the columns and scale to unit Frobenius norm (App. C, Eq. 7)."""
    x = center_features(x)
    return x / torch.linalg.norm(x)


def procrustes_factor(x: torch.Tensor) -> torch.Tensor:
    """The factor ``F`` of shape (min(n, p), n) with ``FᵀF = XXᵀ`` for a normalised layer of shape (n, p)."""
    n, p = x.shape
    if p <= n:
        return x.T.contiguous()
    # Thin QR of the tall p×n matrix Xᵀ: R is n×n and keeps XXᵀ = RᵀR without squaring the condition number
    # (an eigendecomposition of the Gram would, and the square roots of its tiny eigenvalues lose precision).
    return torch.linalg.qr(x.T, mode="r").R


def nuclear_norm_from_factors(fx: torch.Tensor, fy: torch.Tensor) -> torch.Tensor:
    """``‖XᵀY‖_*`` from the layer factors: the sum of the singular values of ``F_x F_yᵀ``."""
    return torch.linalg.svdvals(fx @ fy.T).sum()


def procrustes_similarity(x, y, names: tuple[str, str] = ("x", "y")) -> float:
    """Procrustes similarity ``1 - d²/2 = ‖XᵀY‖_*`` of centred, unit-norm activations (Bonheme & Grześ 2023, Eq. 5).

    Parameters
    ----------
    x, y : array or tensor of shape (n_examples, n_features) (trailing dimensions are flattened)

    Returns
    -------
    float in [0, 1]; 1 when ``y`` is an orthogonal transform and rescaling of ``x``.
    """
    x, y = prepare_pair(x, y, names)
    fx, fy = procrustes_factor(normalise(x)), procrustes_factor(normalise(y))
    return float(nuclear_norm_from_factors(fx, fy).clamp(0.0, 1.0))


def procrustes_distance(x, y, names: tuple[str, str] = ("x", "y")) -> float:
    """The squared Procrustes distance ``d² = 2 - 2‖XᵀY‖_*`` in [0, 2] (Eq. 4 after normalisation)."""
    return 2.0 - 2.0 * procrustes_similarity(x, y, names)
