"""Synthetic sanity checks of the metrics (Bonheme & Grześ 2023, Section 2.3 and Fig. 1; Ding et al. 2021).

Used by ``notebooks/bonheme2023/01-metric-sanity.md``.

* :func:`shared_feature_pair`: a matrix ``X`` of uniform features and a matrix ``Y`` that keeps a fraction of its
  columns and redraws the others, as in the paper's sensitivity study (50 features; 80%, 50% and 0% shared).
* :func:`sensitivity_to_examples`: CKA and Procrustes of those pairs as the number of examples grows.
* :func:`small_component_pair` / :func:`small_component_sweep`: two representations whose largest principal
  components agree and whose small ones differ (Ding et al.'s test): CKA stays near 1 while Procrustes drops.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..runtime import generator
from .cka import linear_cka
from .procrustes import procrustes_similarity

__all__ = ["shared_feature_pair", "sensitivity_to_examples", "small_component_pair", "small_component_sweep",
           "closed_form_small_components"]


def shared_feature_pair(n_examples: int, n_features: int = 50, shared: float = 0.8,
                        seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``X`` of shape (n, p) with U(0, 1) entries and ``Y`` sharing ``round(shared·p)`` of its columns.

    The shared columns are ``X``'s first ones; the remaining columns of ``Y`` are fresh U(0, 1) draws.
    """
    if not 0 <= shared <= 1:
        raise ValueError(f"shared: expected a fraction in [0, 1], got {shared!r}")
    if n_examples < 2 or n_features < 1:
        raise ValueError(f"n_examples and n_features: expected at least 2 and 1, got {n_examples} and {n_features}")
    g = generator(seed)
    x = torch.rand(n_examples, n_features, generator=g, dtype=torch.float64)
    k = int(round(shared * n_features))
    fresh = torch.rand(n_examples, n_features - k, generator=g, dtype=torch.float64)
    return x, torch.cat([x[:, :k], fresh], dim=1)


def sensitivity_to_examples(example_counts: Sequence[int], n_features: int = 50,
                            fractions: Sequence[float] = (0.8, 0.5, 0.0), seeds: Sequence[int] = (0,)) -> pd.DataFrame:
    """CKA and Procrustes of :func:`shared_feature_pair` for every example count, fraction and seed.

    Returns a long table with columns ``n_examples``, ``shared``, ``seed``, ``metric`` ("CKA" or "Procrustes")
    and ``similarity``.
    """
    rows = []
    for seed in seeds:
        for shared in fractions:
            for i, n in enumerate(example_counts):
                # One seed per (seed, fraction, count) so that a count's matrices do not depend on the others.
                x, y = shared_feature_pair(int(n), n_features, shared, seed=1000 * seed + 37 * i + int(100 * shared))
                rows.append(dict(n_examples=int(n), shared=shared, seed=seed, metric="CKA",
                                 similarity=linear_cka(x, y)))
                rows.append(dict(n_examples=int(n), shared=shared, seed=seed, metric="Procrustes",
                                 similarity=procrustes_similarity(x, y)))
    return pd.DataFrame(rows)


def small_component_pair(n_examples: int, n_features: int = 100, removed: float = 0.9, decay: float = 1.0,
                         seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``X`` with principal-component variances ``k^-decay`` and ``Y``: ``X`` with its smallest components removed.

    ``removed`` is the fraction of principal components (the low-variance ones) projected out of ``Y``; the
    largest ``1 - removed`` are shared exactly (Ding et al. 2021, Section 4: principal-component deletion).
    """
    if not 0 <= removed < 1:
        raise ValueError(f"removed: expected a fraction in [0, 1), got {removed!r}")
    g = generator(seed)
    basis, _ = torch.linalg.qr(torch.randn(n_features, n_features, generator=g, dtype=torch.float64))
    scores = torch.randn(n_examples, n_features, generator=g, dtype=torch.float64)
    scores = (scores - scores.mean(0)) * torch.arange(1, n_features + 1, dtype=torch.float64).pow(-decay / 2)
    x = scores @ basis.T
    keep = n_features - int(round(removed * n_features))
    y = scores[:, :keep] @ basis[:, :keep].T
    return x, y


def small_component_sweep(removed_fractions: Sequence[float], n_examples: int = 2000, n_features: int = 100,
                          decay: float = 1.0, seeds: Sequence[int] = (0,)) -> pd.DataFrame:
    """CKA and Procrustes of :func:`small_component_pair` for each fraction of removed small components."""
    rows = []
    for seed in seeds:
        for removed in removed_fractions:
            x, y = small_component_pair(n_examples, n_features, removed, decay, seed)
            kept = n_features - int(round(removed * n_features))
            variance_kept = float(y.square().sum() / x.square().sum())
            for metric, fn in (("CKA", linear_cka), ("Procrustes", procrustes_similarity)):
                rows.append(dict(removed=removed, kept_components=kept, variance_kept=variance_kept, seed=seed,
                                 metric=metric, similarity=fn(x, y)))
    return pd.DataFrame(rows)


def closed_form_small_components(n_features: int, removed: float, decay: float = 1.0) -> dict[str, float]:
    """Population values for :func:`small_component_pair`: with variances ``λ_k`` and the top ``K`` kept,
    CKA = sqrt(Σ_top λ² / Σ λ²) and Procrustes = sqrt(Σ_top λ / Σ λ)."""
    lam = np.arange(1, n_features + 1, dtype=float) ** -decay
    keep = n_features - int(round(removed * n_features))
    return {"CKA": float(np.sqrt((lam[:keep] ** 2).sum() / (lam ** 2).sum())),
            "Procrustes": float(np.sqrt(lam[:keep].sum() / lam.sum()))}
