"""The Fréchet distance between Gaussians fitted to two sets of features (rows are examples).

``d² = ‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2})``, the squared 2-Wasserstein distance between the two
Gaussians (Dowson & Landau 1982); with the features of an image classifier it is the FID of Heusel et al. (2017).
Used by the Jamroż et al. (2020) pages to score decoded samples.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["frechet_distance"]


def frechet_distance(a, b) -> float:
    """Fréchet distance between Gaussians fitted (mean, ddof=1 covariance) to the rows of ``a`` and of ``b``.

    ``a`` (n, F) and ``b`` (m, F) are tensors or arrays, with n, m ≥ 2. Σ_a Σ_b is similar to the PSD matrix
    Σ_a^½ Σ_b Σ_a^½, so its eigenvalues are real and non-negative and tr (Σ_a Σ_b)^½ is the sum of their square
    roots; unlike ``scipy.linalg.sqrtm`` this stays finite when a covariance is singular (a dead feature).
    """
    a, b = (np.asarray(torch.as_tensor(t, dtype=torch.float64)) for t in (a, b))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a, b: expected two matrices with the same number of columns, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) < 2:
        raise ValueError("a, b: need at least 2 rows each to estimate a covariance")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    eig = np.linalg.eigvals(cov_a @ cov_b).real
    trace_root = np.sqrt(np.clip(eig, 0.0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)
