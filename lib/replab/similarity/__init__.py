"""Representational similarity: CKA and Procrustes, for one pair of layers, every pair of layers of two models
(:func:`cka_matrix`), or every pair of layers of every pair of many models (:func:`similarity_grid`, also the
``replab similarity`` command for long, resumable runs); and the Fréchet distance between two feature sets
(:func:`frechet_distance`).

Used by the Bonheme & Grześ pages (``notebooks/bonheme2022``, ``notebooks/bonheme2023``). See
``notebooks/bonheme2023/01-metric-sanity.md`` for when each metric can be trusted.
"""
from .allpairs import GRID_COLUMNS, GRID_METRICS, grid_table, similarity_grid  # noqa: F401
from .cka import (center_gram, cka, feature_space_linear_cka, gram_linear, gram_rbf, hsic,  # noqa: F401
                  hsic_unbiased_features, linear_cka, rbf_cka)
from .frechet import frechet_distance  # noqa: F401
from .matrix import METRICS, cka_matrix  # noqa: F401
from .minibatch import MinibatchCKA, minibatch_cka  # noqa: F401
from .procrustes import procrustes_distance, procrustes_similarity  # noqa: F401
from .stats import BootstrapResult, PermutationResult, bootstrap_ci, permutation_test  # noqa: F401

__all__ = ["gram_linear", "gram_rbf", "center_gram", "cka", "hsic", "hsic_unbiased_features",
           "feature_space_linear_cka", "linear_cka", "rbf_cka", "procrustes_similarity", "procrustes_distance",
           "cka_matrix", "METRICS", "MinibatchCKA", "minibatch_cka", "bootstrap_ci", "permutation_test",
           "BootstrapResult", "PermutationResult", "similarity_grid", "grid_table", "GRID_METRICS", "GRID_COLUMNS",
           "frechet_distance"]
