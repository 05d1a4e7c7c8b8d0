"""Procrustes on a subset of the examples: a fixed random subset, the same for both models, never the first rows
(replab.layer_similarity.procrustes_rows)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from replab.layer_similarity import diagonal_similarity, procrustes_rows, similarity_tables
from replab.similarity.procrustes import procrustes_similarity


def test_the_subset_is_fixed_spread_and_without_repeats():
    rows = procrustes_rows(1000, 100)
    assert np.array_equal(rows, procrustes_rows(1000, 100))
    assert len(set(rows.tolist())) == 100 and np.all(np.diff(rows) > 0)
    # not the first rows: a sample sorted by index would otherwise see only its first classes
    assert rows.max() > 800 and rows.min() < 200 and (rows >= 500).sum() > 30
    assert procrustes_rows(50, 100) == slice(None) and procrustes_rows(50, None) == slice(None)
    with pytest.raises(ValueError, match="n_procrustes: expected at least 2"):
        procrustes_rows(50, 1)


def test_both_models_are_compared_on_the_same_examples():
    g = torch.Generator().manual_seed(3)
    # the first half of the examples carries nothing of b's second feature: a first-rows cut would see only it
    a = {"z": torch.randn(400, 6, generator=g, dtype=torch.float64)}
    b = {"z": a["z"] @ torch.randn(6, 6, generator=g, dtype=torch.float64)}
    b["z"][:200, 1] = 0.0
    rows = procrustes_rows(400, 120)
    want = procrustes_similarity(a["z"][rows], b["z"][rows])
    got = similarity_tables({"a": a, "b": b}, [("a", "b")], metrics=("procrustes",), n_procrustes=120)
    assert got[("a", "b")]["procrustes"].loc["z", "z"] == pytest.approx(float(want), abs=1e-9)
    assert float(want) != pytest.approx(float(procrustes_similarity(a["z"][:120], b["z"][:120])), abs=1e-3)
    diag = diagonal_similarity(a, b, n_procrustes=120)
    assert diag["z"] <= float(want) + 1e-12
