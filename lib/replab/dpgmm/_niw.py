"""Normal-inverse-Wishart algebra for the DP-GMM of Jamroż et al. (2020), Eqs. 3-6.

Conventions: a component holding ``n`` points has ``kappa = kappa0 + n``, ``nu = nu0 + n``, posterior mean ``m`` and
scatter ``S = S0 + sum x x^T + kappa0 mu0 mu0^T - kappa m m^T``. ``S`` is stored through its lower Cholesky factor
``L`` (``S = L L^T``), row-major, so the forward substitution of the predictive reads contiguous rows. Its posterior predictive is
a multivariate Student-t with ``df = nu - D + 1``, location ``m`` and scale matrix ``(kappa + 1) / (kappa df) S``.

Everything here is float64: downdates lose precision quickly in float32.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import gammaln

__all__ = ["NIWPrior", "make_prior", "predictive_df", "predictive_scale_factor", "component_statistics",
           "log_marginal_likelihood", "log_marginal_from_factors", "cholesky_update"]


@dataclass(frozen=True)
class NIWPrior:
    """Hyper-parameters ``theta0 = {mu0, kappa0, nu0, S0}`` of Eq. 4, with ``S0 = L0 L0^T``."""
    mu0: np.ndarray         # (D,)
    kappa0: float
    nu0: float
    chol0: np.ndarray       # (D, D) lower Cholesky factor of S0

    @property
    def dim(self) -> int:
        return int(self.mu0.shape[0])


def make_prior(x: np.ndarray, kappa0: float = 0.01, nu0: float | None = None,
               n_init_components: int | None = None) -> NIWPrior:
    """The paper code's data-driven prior: ``mu0`` = data mean, ``nu0 = D + 2``,
    ``S0 = diag(var) / K0^(2/D)`` with the maximum-likelihood variances and ``K0`` the initial component count.

    Dividing by ``K0^(2/D)`` shrinks the prior volume so that ``K0`` prior components would tile the data's volume.
    """
    n, d = x.shape
    if nu0 is None:
        nu0 = d + 2.0
    if n_init_components is None:
        n_init_components = default_init_components(n)
    var = x.var(axis=0)
    s0 = np.diag(var / float(n_init_components) ** (2.0 / d))
    return NIWPrior(mu0=x.mean(axis=0).astype(np.float64), kappa0=float(kappa0), nu0=float(nu0),
                    chol0=np.linalg.cholesky(s0))


def default_init_components(n: int) -> int:
    """``int(log2(1 + N))``, the paper code's initial number of components (14 for N = 25,600)."""
    return max(1, int(math.log2(1 + n)))


def predictive_df(counts, prior: NIWPrior):
    """Degrees of freedom ``nu0 + n - D + 1`` of each component's Student-t predictive (``n = 0``: the prior's)."""
    return prior.nu0 + counts - prior.dim + 1.0


def predictive_scale_factor(counts, prior: NIWPrior):
    """``sqrt((kappa + 1) / (kappa df))``: multiplies the Cholesky factor of ``S`` into the Student-t scale."""
    kappa = prior.kappa0 + counts
    return np.sqrt((kappa + 1.0) / (kappa * predictive_df(counts, prior)))


def component_statistics(x: np.ndarray, prior: NIWPrior):
    """Posterior ``(n, m, L)`` of one component holding the rows of ``x``, computed from scratch (no updates).

    Returns the count, the posterior mean of shape (D,) and the lower Cholesky factor of ``S``, shape (D, D).
    """
    n = x.shape[0]
    kappa = prior.kappa0 + n
    m = (prior.kappa0 * prior.mu0 + x.sum(axis=0)) / kappa
    s0 = prior.chol0 @ prior.chol0.T
    s = s0 + x.T @ x + prior.kappa0 * np.outer(prior.mu0, prior.mu0) - kappa * np.outer(m, m)
    return n, m, np.linalg.cholesky(s)


def _log_multigamma(a: np.ndarray, d: int) -> np.ndarray:
    """``log Gamma_D(a)`` elementwise (scipy's ``multigammaln`` validates its input on every call, too slow here)."""
    a = np.asarray(a, dtype=np.float64)
    return 0.25 * d * (d - 1) * math.log(math.pi) + gammaln(a[..., None] - 0.5 * np.arange(d)).sum(-1)


def log_marginal_from_factors(counts: np.ndarray, chols: np.ndarray, prior: NIWPrior) -> float:
    """``log p(X | c)``: the collapsed marginal likelihood of the data given the assignments.

    Sums, over components with counts of shape (K,) and lower factors of shape (K, D, D), the closed form
    ``-nD/2 log(pi) + log Gamma_D(nu/2) - log Gamma_D(nu0/2) + nu0/2 log|S0| - nu/2 log|S| + D/2 log(kappa0/kappa)``.
    """
    d = prior.dim
    counts = np.asarray(counts, dtype=np.float64)
    if counts.size == 0:
        return 0.0
    nu = prior.nu0 + counts
    kappa = prior.kappa0 + counts
    diag = np.arange(d)
    logdet = 2.0 * np.log(chols[:, diag, diag]).sum(-1)
    logdet0 = 2.0 * np.log(np.diag(prior.chol0)).sum()
    terms = (-0.5 * counts * d * math.log(math.pi) + _log_multigamma(nu / 2.0, d) - _log_multigamma(prior.nu0 / 2.0, d)
             + 0.5 * prior.nu0 * logdet0 - 0.5 * nu * logdet + 0.5 * d * (math.log(prior.kappa0) - np.log(kappa)))
    return float(terms.sum())


def log_marginal_likelihood(x: np.ndarray, labels: np.ndarray, prior: NIWPrior) -> float:
    """``log p(X | c)`` from scratch for the partition given by ``labels`` (shape (N,))."""
    counts, chols = [], []
    for k in np.unique(labels):
        n, _, u = component_statistics(x[labels == k], prior)
        counts.append(n)
        chols.append(u)
    return log_marginal_from_factors(np.array(counts), np.stack(chols), prior)


def log_crp(counts: np.ndarray, alpha: float) -> float:
    """``log p(c | alpha)`` of the Chinese restaurant process for a partition with block sizes ``counts``."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum()
    return float(len(counts) * math.log(alpha) + gammaln(alpha) - gammaln(alpha + n) + gammaln(counts).sum())


def cholesky_update(chol: torch.Tensor, x: torch.Tensor, sign: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Rank-one update of lower Cholesky factors: returns ``L'`` with ``L' L'^T = L L^T + sign * x x^T``.

    Parameters
    ----------
    chol : tensor of shape (..., D, D), lower triangular with a positive diagonal.
    x : tensor of shape (..., D).
    sign : +1 for an update, -1 for a downdate (the result must stay positive definite), or a tensor of
        shape (...) mixing both across the batch.

    Each of the D steps applies one hyperbolic (downdate) or Givens-like (update) rotation to a column of ``L``
    and to ``x``; the loop runs over columns and every step is vectorised over the batch, so one call updates
    every chain (or every component) at once. ``chol`` and ``x`` are not modified.
    """
    low = chol.clone()
    x = x.clone()
    sign = torch.as_tensor(sign, dtype=low.dtype, device=low.device)
    d = low.shape[-1]
    for k in range(d):
        lkk = low[..., k, k]
        xk = x[..., k]
        r = torch.sqrt(lkk * lkk + sign * xk * xk)
        c = (r / lkk).unsqueeze(-1)
        s = (xk / lkk).unsqueeze(-1)
        col = (low[..., k + 1:, k] + sign.unsqueeze(-1) * s * x[..., k + 1:]) / c
        x[..., k + 1:] = c * x[..., k + 1:] - s * col
        low[..., k, k] = r
        low[..., k + 1:, k] = col
    return low
