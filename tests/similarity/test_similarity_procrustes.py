"""Procrustes similarity against an explicit SVD of XᵀY, in both regimes (p ≤ n and p > n)."""
import numpy as np
import pytest
import torch

from replab.similarity import procrustes_distance, procrustes_similarity


def ref_procrustes(x, y):
    """The paper's formula as its code computes it: the nuclear norm of the p×q matrix XᵀY."""
    x = x - x.mean(0)
    y = y - y.mean(0)
    x = x / np.linalg.norm(x)
    y = y / np.linalg.norm(y)
    d2 = 2 - 2 * np.linalg.svd(x.T @ y, compute_uv=False).sum()
    return 1 - d2 / 2


@pytest.mark.parametrize("n,p,q", [(80, 10, 30), (25, 300, 40), (25, 200, 300), (30, 30, 30)])
def test_matches_explicit_svd(n, p, q):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, p)) + 2.0
    y = x[:, :1] * rng.standard_normal((1, q)) + rng.standard_normal((n, q))
    assert procrustes_similarity(x, y) == pytest.approx(ref_procrustes(x, y), abs=1e-9)
    assert procrustes_similarity(y, x) == pytest.approx(ref_procrustes(x, y), abs=1e-9)


@pytest.mark.parametrize("p", [8, 120])
def test_one_for_orthogonal_transforms_and_scaling(p):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, p))
    q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    assert procrustes_similarity(x, 3.0 * x @ q - 1.0) == pytest.approx(1.0, abs=1e-9)
    assert procrustes_distance(x, x) == pytest.approx(0.0, abs=1e-9)


def test_in_unit_interval_and_below_one_for_different_inputs():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((200, 5)), rng.standard_normal((200, 5))
    s = procrustes_similarity(x, y)
    assert 0 <= s < 0.5
    assert procrustes_distance(x, y) == pytest.approx(2 - 2 * s)


def test_wide_layers_never_form_the_feature_by_feature_matrix():
    # 100,000 features: a p×p float64 matrix would need 80 GB, the sample-space route a few MB.
    g = torch.Generator().manual_seed(3)
    x = torch.randn(12, 100_000, generator=g, dtype=torch.float64)
    y = x + 2.0 * torch.randn(12, 100_000, generator=g, dtype=torch.float64)
    # Second formulation (Gram matrices only): ‖XᵀY‖_* = Σ sqrt(eig(Kx^{1/2} Ky Kx^{1/2})).
    xc, yc = (a - a.mean(0) for a in (x, y))
    xc, yc = xc / xc.norm(), yc / yc.norm()
    kx, ky = (xc @ xc.T).numpy(), (yc @ yc.T).numpy()
    w, v = np.linalg.eigh(kx)
    root = v @ np.diag(np.sqrt(w.clip(0))) @ v.T
    want = np.sqrt(np.linalg.eigvalsh(root @ ky @ root).clip(0)).sum()
    s = procrustes_similarity(x, y)
    assert s == pytest.approx(want, abs=1e-6)
    assert s > 0.99  # 12 examples, 100,000 features: Procrustes saturates (Bonheme & Grześ 2023, Fig. 1)


def test_bad_inputs():
    x = np.random.default_rng(4).standard_normal((10, 3))
    with pytest.raises(ValueError, match=r"^x and y must have the same number of examples"):
        procrustes_similarity(x, x[:5])
    with pytest.raises(ValueError, match=r"^y: is constant"):
        procrustes_similarity(x, np.zeros((10, 4)))


def _with_spectrum(rng, n, p, singular_values):
    """A centred n×p matrix with the given singular values (random singular vectors orthogonal to 1)."""
    u = np.linalg.qr(np.c_[np.ones(n), rng.standard_normal((n, len(singular_values)))])[0][:, 1:]
    v = np.linalg.qr(rng.standard_normal((p, len(singular_values))))[0]
    return u @ np.diag(singular_values) @ v.T


@pytest.mark.parametrize("n,p,q", [(150, 400, 300), (120, 119, 500), (200, 1000, 150)])
def test_gram_and_eigenvalue_route_matches_explicit_svd(n, p, q):
    # Wide layers: Cholesky factors of the Gram and the eigenvalues of CᵀC (more than 64 singular values).
    from replab.similarity.procrustes import normalise, nuclear_norm_from_factors, procrustes_factor

    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, p)) + 1.0
    y = np.maximum(x[:, :1] * rng.standard_normal((1, q)) + rng.standard_normal((n, q)), 0)
    want = ref_procrustes(x, y)
    assert procrustes_similarity(x, y) == pytest.approx(want, abs=1e-10)
    fx, fy = (procrustes_factor(normalise(torch.tensor(a))) for a in (x, y))
    assert max(fx.f.shape) <= n - 1 and max(fy.f.shape) <= n - 1  # never p×p
    forced = float(nuclear_norm_from_factors(fx, fy, tolerance=0.0))  # the exact route (QR and SVD)
    assert forced == pytest.approx(want, abs=1e-10)


def test_rank_deficient_wide_layers_take_the_exact_route():
    # 300 features of rank 6: the Gram is singular, its Cholesky factorisation fails, QR takes over.
    from replab.similarity.procrustes import normalise, procrustes_factor

    rng = np.random.default_rng(6)
    x = rng.standard_normal((100, 6)) @ rng.standard_normal((6, 300))
    y = np.tanh(x[:, :150]) @ rng.standard_normal((150, 200)) + 0.1 * rng.standard_normal((100, 200))
    assert procrustes_factor(normalise(torch.tensor(x))).exact
    assert procrustes_similarity(x, y) == pytest.approx(ref_procrustes(x, y), abs=1e-10)


@pytest.mark.parametrize("lowest", [-7, -14])
def test_ill_conditioned_layers_keep_their_small_singular_values(lowest):
    # Singular values from 1 down to 1e-7 (the Gram is positive definite: Cholesky route, whose eigenvalues of CᵀC
    # square the small ones) or 1e-14 (it is not: the exact route).
    rng = np.random.default_rng(7)
    n = 160
    x = _with_spectrum(rng, n, 400, np.logspace(0, lowest, n - 1))
    y = _with_spectrum(rng, n, 300, np.logspace(0, lowest + 1, n - 1)) + 1e-3 * x[:, :300]
    assert procrustes_similarity(x, y) == pytest.approx(ref_procrustes(x, y), abs=1e-12)
