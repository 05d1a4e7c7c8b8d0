"""Linear and RBF CKA against a NumPy transcription of Kornblith et al. (2019)'s formulas, and invariances."""
import numpy as np
import pytest
import torch

from replab.similarity import (center_gram, cka, feature_space_linear_cka, gram_linear, gram_rbf, hsic,
                               hsic_unbiased_features, linear_cka, rbf_cka)


# --- the oracle: the reference formulas, written out in plain NumPy ------------------------------------------
def ref_gram_rbf(x, threshold=1.0):
    dot = x @ x.T
    sq = np.diag(dot)
    d2 = sq[:, None] + sq[None, :] - 2 * dot
    return np.exp(-d2 / (2 * threshold ** 2 * np.median(d2)))


def ref_hsic_biased(k, l):
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ l @ h)


def ref_hsic_unbiased(k, l):
    # Song et al. (2012), Eq. 5, on kernels with zeroed diagonals.
    n = k.shape[0]
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    one = np.ones(n)
    return (np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * (one @ k @ l @ one)) / (n * (n - 3))


def ref_cka(k, l, debiased=False):
    f = ref_hsic_unbiased if debiased else ref_hsic_biased
    return f(k, l) / np.sqrt(f(k, k) * f(l, l))


def _pair(rng, n, p, q, shared=0.6):
    x = rng.standard_normal((n, p)) + 3.0  # an offset, as after a ReLU
    y = x[:, : min(p, q)] @ rng.standard_normal((min(p, q), q)) * shared + rng.standard_normal((n, q))
    return x, y


@pytest.mark.parametrize("n,p,q", [(60, 10, 25), (30, 80, 50), (50, 5, 400)])
@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_matches_reference(n, p, q, debiased):
    rng = np.random.default_rng(0)
    x, y = _pair(rng, n, p, q)
    want = ref_cka(x @ x.T, y @ y.T, debiased)
    assert abs(linear_cka(x, y, debiased=debiased) - want) < 1e-6
    assert abs(linear_cka(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32),
                          debiased=debiased) - want) < 1e-5


@pytest.mark.parametrize("sigma", [0.8, 0.5])
@pytest.mark.parametrize("debiased", [False, True])
def test_rbf_cka_matches_reference(sigma, debiased):
    rng = np.random.default_rng(1)
    x, y = _pair(rng, 41, 7, 12)  # odd n² checks the median of an odd count
    want = ref_cka(ref_gram_rbf(x, sigma), ref_gram_rbf(y, sigma), debiased)
    assert abs(rbf_cka(x, y, sigma=sigma, debiased=debiased) - want) < 1e-6
    np.testing.assert_allclose(gram_rbf(torch.tensor(x), sigma).numpy(), ref_gram_rbf(x, sigma), atol=1e-12)


def test_center_gram_is_hkh_and_u_centring_matches_song():
    rng = np.random.default_rng(2)
    x, y = _pair(rng, 20, 6, 9)
    k, l = x @ x.T, y @ y.T
    n = 20
    h = np.eye(n) - 1 / n
    np.testing.assert_allclose(center_gram(torch.tensor(k)).numpy(), h @ k @ h, atol=1e-9)
    got = float(hsic(torch.tensor(k), torch.tensor(l), debiased=True)) / (n * (n - 3))
    assert got == pytest.approx(ref_hsic_unbiased(k, l), rel=1e-9)
    xc, yc = torch.tensor(x - x.mean(0)), torch.tensor(y - y.mean(0))
    assert float(hsic_unbiased_features(xc, yc)) / (n * (n - 3)) == pytest.approx(ref_hsic_unbiased(k, l), rel=1e-9)


@pytest.mark.parametrize("debiased", [False, True])
def test_features_equal_grams(debiased):
    rng = np.random.default_rng(3)
    x, y = (torch.tensor(a) for a in _pair(rng, 40, 8, 15))
    xc, yc = x - x.mean(0), y - y.mean(0)
    a = float(feature_space_linear_cka(x, y, debiased))
    b = float(cka(gram_linear(xc), gram_linear(yc), debiased))
    assert a == pytest.approx(b, abs=1e-12)


@pytest.mark.parametrize("fn", [linear_cka, rbf_cka, lambda a, b: linear_cka(a, b, debiased=True)])
def test_self_similarity_is_one(fn):
    x = np.random.default_rng(4).standard_normal((30, 12))
    assert fn(x, x) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("fn", [linear_cka, rbf_cka])
def test_invariant_to_orthogonal_transforms_and_isotropic_scaling(fn):
    rng = np.random.default_rng(5)
    x, y = _pair(rng, 50, 10, 20)
    q, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    base = fn(x, y)
    assert fn(x, 7.5 * y @ q) == pytest.approx(base, abs=1e-9)
    assert fn(0.01 * x, y + 4.0) == pytest.approx(base, abs=1e-9)  # and to translation


def test_not_invariant_to_invertible_linear_maps():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((200, 10))
    a = np.diag(np.logspace(0, 3, 10)) @ np.linalg.qr(rng.standard_normal((10, 10)))[0]
    assert np.linalg.matrix_rank(a) == 10
    assert linear_cka(x, x @ a) < 0.9


@pytest.mark.parametrize("fn", [linear_cka, rbf_cka])
def test_bad_inputs_name_the_problem(fn):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((10, 3))
    with pytest.raises(ValueError, match=r"^x and y must have the same number of examples \(rows\), got 10 and 9$"):
        fn(x, x[:9])
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"^y: contains NaN values$"):
        fn(x, bad)
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"^x: contains infinite values$"):
        fn(bad, x)
    with pytest.raises(ValueError, match=r"^y: is constant"):
        fn(x, np.ones((10, 3)))
    with pytest.raises(ValueError, match=r"^x: needs at least 4 examples \(the unbiased HSIC divides by n - 3\), "
                                         r"got 3$"):
        fn(x[:3], x[:3], debiased=True)
    with pytest.raises(ValueError, match=r"^x: expected a matrix"):
        fn(np.ones(10), x)
