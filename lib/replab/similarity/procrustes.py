"""Orthogonal Procrustes similarity (Bonheme & Grześ 2023, Eqs. 3–5 and App. C; Ding et al. 2021).

Each activation matrix is centred column-wise and scaled to unit Frobenius norm; the Procrustes distance is then
``d² = ‖X‖²_F + ‖Y‖²_F - 2‖XᵀY‖_* = 2 - 2‖XᵀY‖_*`` and the similarity ``1 - d²/2 = ‖XᵀY‖_*`` lies in [0, 1].

The paper's code takes the nuclear norm of the p×q matrix XᵀY, which for early convolutional layers is
32,768 × 32,768. Here each layer is reduced once to a *factor* ``F`` with ``FᵀF = XXᵀ`` (the centred Gram) and at
most n - 1 rows, and ``‖XᵀY‖_* = ‖F_x F_yᵀ‖_*``: no p×p matrix is ever formed.

* Factors live in a basis without the constant direction: centred data satisfy ``X1 = 0``, so a Householder
  reflection ``H`` that sends ``1/√n`` to the first axis leaves ``HX`` with a zero first row, which is dropped
  (n - 1 coordinates, and a Gram that is positive definite for generic data).
* ``p < n``: ``F = (HX)ᵀ`` without that row (exact).
* ``p ≥ n``: ``F = Lᵀ`` from the Cholesky factor of the deflated Gram ``HXXᵀH = LLᵀ``, formed in float64
  (``n²p/2 + n³/3`` operations, against ``2n²p`` for a QR of Xᵀ). When the Gram is not positive definite
  (rank-deficient layers) the factor is the exact ``R`` of the thin QR of ``(HX)ᵀ``.
* A pair: ``C = F_x F_yᵀ``; its singular values are the square roots of the eigenvalues of ``CᵀC`` (one symmetric
  eigenvalue problem, several times faster than an SVD). Squaring costs precision for singular values near
  ``sqrt(ε)``: each eigenvalue is known to ``δ = η‖K_x‖‖K_y‖ + 8 n ε λ_max`` (``η`` the factors' relative backward
  error, ``ε(n + p)`` for a float64 Gram), which moves ``sqrt(λ)`` by at most ``min(sqrt(δ), δ / 2sqrt(λ))``.
  When the sum of these bounds exceeds ``1e-7``, the pair is recomputed exactly: QR factors and the singular
  values of ``C``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ._inputs import center_features, prepare_pair
from .cka import _gram_float64

__all__ = ["procrustes_similarity", "procrustes_distance", "procrustes_factor", "nuclear_norm_from_factors",
           "Factor"]

_EPS = torch.finfo(torch.float64).eps
# Below this many singular values the SVD of C is as cheap as the eigenvalue route.
_SMALL = 64
# The largest error bound the eigenvalue route may have before the pair is recomputed exactly.
_TOLERANCE = 1e-7


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Centre the columns and scale to unit Frobenius norm (App. C, Eq. 7), in float64."""
    x = center_features(x, torch.float64)  # a new tensor, scaled in place
    return x.div_(torch.linalg.norm(x))


def _householder(n: int, device) -> torch.Tensor:
    """``v`` of the reflection ``H = I - 2vvᵀ/vᵀv`` that sends ``1/√n`` to the first axis."""
    v = torch.full((n,), 1 / math.sqrt(n), dtype=torch.float64, device=device)
    v[0] -= 1
    return v


def _reflect_rows(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``H a`` for ``a`` of shape (n, k)."""
    return a - (2 / (v @ v)) * torch.outer(v, v @ a)


@dataclass
class Factor:
    """A layer reduced for Procrustes: ``f`` of shape (r, n - 1) with ``fᵀf = HXXᵀH`` minus its first row and
    column (X normalised), ``error`` the relative backward error of ``fᵀf``, ``gram_norm`` an upper bound on its
    spectral norm (the Frobenius norm), ``exact`` whether ``f``'s singular values carry no squaring error, and
    ``x`` the normalised layer (kept to form the exact factor when needed). The exact factor has the same Gram,
    so ``gram_norm`` holds for both, and ``error`` bounds the QR's backward error too."""

    f: torch.Tensor
    error: float
    gram_norm: float
    exact: bool
    x: torch.Tensor | Callable[[], torch.Tensor]

    def exact_factor(self) -> "Factor":
        """This factor, or the exact one (a QR of the layer) when it came from the Gram."""
        if self.exact:
            return self
        x = self.x() if callable(self.x) else self.x  # (a callable: a layer kept on disk, prepared on demand)
        v = _householder(x.shape[0], x.device)
        r = torch.linalg.qr(_reflect_rows(x, v)[1:].T, mode="r").R
        self.f, self.exact = r, True  # the exact factor replaces the Gram one for every later pair
        return self


def procrustes_factor(x: torch.Tensor) -> Factor:
    """The :class:`Factor` of a normalised layer of shape (n, p) (see the module's docstring for the routes)."""
    n, p = x.shape
    v = _householder(n, x.device)
    if p < n:
        f = _reflect_rows(x, v)[1:].T.contiguous()  # (p, n - 1): the first row of Hx is 0 for centred x
        return Factor(f, 8 * _EPS * n, float(torch.linalg.norm(f @ f.T)), True, x)
    # H(XXᵀ)H from the Gram (two rank-one updates of an n×n matrix instead of one of the n×p layer)
    gram = _reflect_rows(_reflect_rows(_gram_float64(x), v).T, v)[1:, 1:]
    chol, info = torch.linalg.cholesky_ex(gram)
    factor = Factor(chol.T, 8 * _EPS * (n + p), float(torch.linalg.norm(gram)), False, x)
    # not positive definite: a rank-deficient layer takes the exact route at once
    return factor if int(info) == 0 else factor.exact_factor()


def nuclear_norm_from_factors(fx: Factor, fy: Factor, tolerance: float = _TOLERANCE) -> torch.Tensor:
    """``‖XᵀY‖_*`` from the layer factors: the sum of the singular values of ``C = F_x F_yᵀ``, from the eigenvalues
    of ``CᵀC`` when their error bound is below ``tolerance``, else from an SVD of ``C`` with exact factors."""
    c = fx.f @ fy.f.T
    if min(c.shape) > _SMALL:
        m = c.T @ c if c.shape[1] <= c.shape[0] else c @ c.T
        lam = torch.linalg.eigvalsh(m).clamp_min(0)
        top = float(lam[-1])
        delta = (fx.error + fy.error) * fx.gram_norm * fy.gram_norm + 8 * m.shape[0] * _EPS * top
        root = lam.sqrt()
        bound = float(torch.minimum(torch.full_like(root, math.sqrt(delta)), delta / (2 * root)).sum())
        if bound <= tolerance:
            return root.sum()
    if not (fx.exact and fy.exact):
        c = fx.exact_factor().f @ fy.exact_factor().f.T
    return torch.linalg.svdvals(c).sum()


def procrustes_similarity(x, y, names: tuple[str, str] = ("x", "y")) -> float:
    """Procrustes similarity ``1 - d²/2 = ‖XᵀY‖_*`` of centred, unit-norm activations (Bonheme & Grześ 2023, Eq. 5).

    Parameters
    ----------
    x, y : array or tensor of shape (n_examples, n_features) (trailing dimensions are flattened)

    Returns
    -------
    float in [0, 1]; 1 when ``y`` is an orthogonal transform and rescaling of ``x``.
    """
    x, y = prepare_pair(x, y, names, dtype=None)  # float32 stays float32 until centred into float64
    fx, fy = procrustes_factor(normalise(x)), procrustes_factor(normalise(y))
    return float(nuclear_norm_from_factors(fx, fy).clamp(0.0, 1.0))


def procrustes_distance(x, y, names: tuple[str, str] = ("x", "y")) -> float:
    """The squared Procrustes distance ``d² = 2 - 2‖XᵀY‖_*`` in [0, 2] (Eq. 4 after normalisation)."""
    return 2.0 - 2.0 * procrustes_similarity(x, y, names)
