"""Centred kernel alignment (CKA), in the vocabulary of Kornblith et al. (2019).

Used by the pages of Bonheme & Grześ (2022, 2023), whose Eq. 2 is the linear CKA::

    CKA(X, Y) = ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)        (X, Y centred column-wise)

which equals ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with ``K = XXᵀ``, ``L = YYᵀ`` and the biased HSIC
estimator ``tr(HKHL)``. The debiased variant replaces HSIC by its unbiased U-statistic (Song et al. 2012),
computed by U-centring the Gram matrices (Székely & Rizzo 2014), as in Kornblith et al. Everything is computed in
float64: the functions are small, differentiable tensor functions.
"""
from __future__ import annotations

import numbers

import torch

from ._inputs import DEBIASED_WHY as _DEBIASED_WHY
from ._inputs import center_features, prepare_pair, rows_needed

__all__ = ["gram_linear", "gram_rbf", "center_gram", "cka", "hsic", "linear_cka", "rbf_cka",
           "feature_space_linear_cka", "hsic_unbiased_features"]


def gram_linear(x: torch.Tensor) -> torch.Tensor:
    """The linear kernel ``X Xᵀ`` of shape (n, n) for ``x`` of shape (n, p)."""
    return x @ x.T


def gram_rbf(x: torch.Tensor, threshold: float = 1.0, name: str = "x") -> torch.Tensor:
    """The RBF kernel ``exp(-‖xᵢ - xⱼ‖² / (2σ²))`` with ``σ = threshold × median pairwise distance``.

    As in Kornblith et al., the median is taken over the squared distances of the whole n×n matrix (diagonal
    included), so ``σ² = threshold² · median(D²)``. ``name`` labels the layer in the error raised when that median
    is 0.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 < threshold < float("inf"):
        # sigma = inf makes every kernel entry 1, so every centred kernel is 0 and CKA is 0/0.
        raise ValueError(f"threshold (sigma): expected a finite positive number, got {threshold!r}")
    dot = x @ x.T
    sq_norms = torch.diagonal(dot)
    sq_dist = (sq_norms[:, None] + sq_norms[None, :] - 2 * dot).clamp_min(0)
    sq_median = _median(sq_dist.flatten())
    if sq_median <= 0:
        raise ValueError(f"{name}: the median pairwise distance is 0 (most examples are identical); "
                         "the RBF bandwidth is undefined")
    # Divided step by step, so that a tiny sigma (sigma² below the smallest float) gives the limit exp(-inf) = 0
    # off the diagonal instead of 0/0 on it.
    return torch.exp(-(sq_dist / sq_median / threshold) / threshold / 2)


def _median(v: torch.Tensor) -> torch.Tensor:
    """The median as NumPy defines it: the mean of the two middle values when the count is even."""
    m = v.numel()
    if m % 2:
        return v.kthvalue((m + 1) // 2).values
    return (v.kthvalue(m // 2).values + v.kthvalue(m // 2 + 1).values) / 2


def center_gram(gram: torch.Tensor, unbiased: bool = False) -> torch.Tensor:
    """Centre a symmetric Gram matrix of shape (n, n).

    ``unbiased=False`` gives ``HKH`` with ``H = I - 11ᵀ/n``. ``unbiased=True`` gives the U-centred matrix of
    Székely & Rizzo (2014, Eq. 3): zero diagonal and, off the diagonal,
    ``K̃ᵢⱼ - r̃ᵢ/(n-2) - r̃ⱼ/(n-2) + t̃/((n-1)(n-2))`` where ``K̃`` is ``K`` with a zeroed diagonal, ``r̃`` its row sums
    and ``t̃`` its total; then ``<Ũ(K), Ũ(L)>_F`` is proportional to the unbiased HSIC.
    """
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1]:
        raise ValueError(f"gram: expected a square matrix, got shape {tuple(gram.shape)}")
    n = gram.shape[0]
    if unbiased:
        if n < 4:
            raise ValueError(f"gram: needs at least 4 examples ({_DEBIASED_WHY}), got {n}")
        g = gram.clone()
        g.fill_diagonal_(0)
        rows = g.sum(dim=0)
        total = rows.sum()
        g = g - rows[:, None] / (n - 2) - rows[None, :] / (n - 2) + total / ((n - 1) * (n - 2))
        g.fill_diagonal_(0)
        return g
    means = gram.mean(dim=0)
    return gram - means[:, None] - means[None, :] + means.mean()


def hsic(gram_x: torch.Tensor, gram_y: torch.Tensor, debiased: bool = False) -> torch.Tensor:
    """``<center(K), center(L)>_F``: HSIC up to the factor 1/(n-1)² (biased) or 1/(n(n-3)) (debiased)."""
    return (center_gram(gram_x, debiased) * center_gram(gram_y, debiased)).sum()


def cka(gram_x: torch.Tensor, gram_y: torch.Tensor, debiased: bool = False) -> torch.Tensor:
    """CKA of two Gram matrices of shape (n, n): ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``."""
    if gram_x.shape != gram_y.shape:
        raise ValueError(f"gram_x and gram_y must have the same shape, got {tuple(gram_x.shape)} and "
                         f"{tuple(gram_y.shape)}")
    kx = center_gram(gram_x, debiased)
    ky = center_gram(gram_y, debiased)
    return (kx * ky).sum() / (torch.linalg.norm(kx) * torch.linalg.norm(ky))


def hsic_unbiased_features(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``n(n-3)·HSIC₁`` of linear kernels from centred features of shape (n, p) and (n, q).

    With centred features ``K1 = 0``, so the U-statistic of Song et al. (2012, Eq. 5) reduces to
    ``‖XᵀY‖²_F - n/(n-2)·⟨dₓ, d_y⟩ + tr(K)·tr(L)/((n-1)(n-2))`` where ``dₓ = diag(XXᵀ)`` (the squared row norms).
    """
    n = x.shape[0]
    dx = (x * x).sum(dim=1)
    dy = (y * y).sum(dim=1)
    # ‖XᵀY‖²_F = ⟨XXᵀ, YYᵀ⟩_F: take the cheaper side (p×q cross-products or two n×n Grams).
    if x.shape[1] * y.shape[1] <= n * (x.shape[1] + y.shape[1]):
        xty = (x.T @ y).square().sum()
    else:
        xty = (gram_linear(x) * gram_linear(y)).sum()
    return xty - n / (n - 2) * (dx @ dy) + dx.sum() * dy.sum() / ((n - 1) * (n - 2))


def feature_space_linear_cka(x: torch.Tensor, y: torch.Tensor, debiased: bool = False) -> torch.Tensor:
    """Linear CKA from already-validated float64 features (no checks), in feature space: O(n·p·q)."""
    x = center_features(x)
    y = center_features(y)
    if debiased:
        return hsic_unbiased_features(x, y) / torch.sqrt(hsic_unbiased_features(x, x) * hsic_unbiased_features(y, y))
    xty = (x.T @ y).square().sum()
    return xty / (torch.linalg.norm(x.T @ x) * torch.linalg.norm(y.T @ y))


def linear_cka(x, y, debiased: bool = False, names: tuple[str, str] = ("x", "y")) -> float:
    """Linear CKA (Bonheme & Grześ 2023, Eq. 2; Kornblith et al. 2019) of activations with the same rows.

    Parameters
    ----------
    x, y : array or tensor of shape (n_examples, n_features) (trailing dimensions are flattened)
    debiased : bool
        Use the unbiased HSIC estimator (needs at least 4 examples).

    Returns
    -------
    float in [0, 1] (the debiased value can be slightly negative for unrelated layers).
    """
    x, y = prepare_pair(x, y, names, *rows_needed(debiased))
    n = x.shape[0]
    # Feature space costs n·p·q, Gram space n²·(p+q): take the cheaper one.
    if x.shape[1] * y.shape[1] <= n * (x.shape[1] + y.shape[1]):
        return float(feature_space_linear_cka(x, y, debiased))
    x, y = center_features(x), center_features(y)
    return float(cka(gram_linear(x), gram_linear(y), debiased))


def rbf_cka(x, y, sigma: float = 0.8, debiased: bool = False, names: tuple[str, str] = ("x", "y")) -> float:
    """CKA with RBF kernels of bandwidth ``sigma`` × the median pairwise distance (Kornblith et al. 2019)."""
    x, y = prepare_pair(x, y, names, *rows_needed(debiased))
    return float(cka(gram_rbf(x, sigma, names[0]), gram_rbf(y, sigma, names[1]), debiased))


def _gram_float64(x: torch.Tensor, block: int = 256, out: torch.Tensor | None = None) -> torch.Tensor:
    """``X Xᵀ`` as float64, computing only the blocks on and above the diagonal (the Gram is symmetric).

    BLAS has no symmetric rank-k product in torch, so the upper block triangle is formed block by block
    (k(k+1)/2 of the k² products) and mirrored; on CUDA one product is faster and is used as is.
    """
    n = x.shape[0]
    if x.is_cuda or n <= 2 * block:
        return (x @ x.T).double() if out is None else out.copy_(x @ x.T)
    if out is None:
        out = torch.empty(n, n, dtype=torch.float64, device=x.device)
    starts = list(range(0, n, block))
    for i in starts:
        rows = x[i:i + block]
        prod = rows @ x[i:].T  # (b, n - i): the diagonal block and everything to its right
        out[i:i + block, i:] = prod
        out[i + block:, i:i + block] = prod[:, block:].T
    return out


def u_center_(g: torch.Tensor) -> torch.Tensor:
    """``center_gram(g, unbiased=True)`` in place (no n×n temporaries); returns ``g``."""
    n = g.shape[0]
    g.fill_diagonal_(0)
    rows = g.sum(dim=0)
    g.sub_(rows[:, None] / (n - 2)).sub_(rows[None, :] / (n - 2)).add_(rows.sum() / ((n - 1) * (n - 2)))
    return g.fill_diagonal_(0)


def layer_gram(x: torch.Tensor, kernel: str = "linear", sigma: float = 0.8, debiased: bool = False,
               dtype: torch.dtype = torch.float64, name: str = "x", out: torch.Tensor | None = None) -> torch.Tensor:
    """The centred (or U-centred) float64 Gram matrix of one validated layer, for :mod:`replab.similarity.matrix`
    (written into ``out``, an n×n float64 tensor, when given)."""
    if kernel == "linear":
        # The product runs in the features' dtype (float32 under mixed precision), from centred features; the
        # Gram is centred once more in float64 (an n² cleanup of float32 rounding of the means), and every sum
        # after it runs in float64.
        g = _gram_float64(center_features(x, dtype), out=out)
        n = g.shape[0]
        if debiased:
            return u_center_(g)
        means = g.mean(dim=0)
        return g.sub_(means[:, None]).sub_(means[None, :]).add_(means.mean())  # HKH without temporaries
    if kernel == "rbf":
        g = center_gram(gram_rbf(x.double(), sigma, name), unbiased=debiased)
        return g if out is None else out.copy_(g)
    raise ValueError(f"kernel: expected 'linear' or 'rbf', got {kernel!r}")

