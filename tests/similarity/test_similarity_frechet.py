"""The Fréchet distance between Gaussian fits of two feature sets, against closed forms and scipy's sqrtm."""
import numpy as np
import pytest
import torch
from scipy import linalg

from replab.similarity import frechet_distance


def _with_moments(rng, mean, cov, n):
    """n rows whose sample mean and (ddof=1) covariance are exactly ``mean`` and ``cov`` (cov may be singular)."""
    z = rng.normal(size=(n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # sample covariance exactly I
    w, v = np.linalg.eigh(cov)
    return np.asarray(mean) + z @ (v * np.sqrt(np.clip(w, 0, None))).T


def test_diagonal_covariances_give_the_closed_form():
    # commuting (diagonal) covariances, one of them singular (a dead feature): ‖Δμ‖² + Σ (σa,i − σb,i)²
    rng = np.random.default_rng(3)
    sa, sb = np.array([1.0, 0.0, 3.0, 0.7]), np.array([2.0, 1.0, 0.5, 0.7])
    mu_a, mu_b = np.zeros(4), np.array([1.0, -1.0, 0.5, 2.0])
    a = _with_moments(rng, mu_a, np.diag(sa ** 2), 40)
    b = _with_moments(rng, mu_b, np.diag(sb ** 2), 60)
    want = ((mu_a - mu_b) ** 2).sum() + ((sa - sb) ** 2).sum()
    assert frechet_distance(torch.as_tensor(a), torch.as_tensor(b)) == pytest.approx(want, rel=1e-7)
    # in 1-D it is (μa − μb)² + (σa − σb)² of the samples themselves
    x, y = rng.normal(1.0, 2.0, (500, 1)), rng.normal(-0.5, 0.5, (400, 1))
    want = (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2
    assert frechet_distance(x, y) == pytest.approx(want, rel=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_spd_covariances_match_scipy_sqrtm(seed):
    rng = np.random.default_rng(seed)
    d = 5
    m1, m2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    ca, cb = m1 @ m1.T + 0.1 * np.eye(d), m2 @ m2.T + 0.1 * np.eye(d)
    mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
    a, b = _with_moments(rng, mu_a, ca, 80), _with_moments(rng, mu_b, cb, 50)
    want = ((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * linalg.sqrtm(ca @ cb).real)
    assert frechet_distance(torch.as_tensor(a), torch.as_tensor(b)) == pytest.approx(want, rel=1e-7)


def test_two_by_two_closed_form_for_non_commuting_covariances():
    # tr √M = √(tr M + 2 √det M) for a 2×2 matrix M = Σa Σb with non-negative eigenvalues
    rng = np.random.default_rng(3)
    mu_a, mu_b = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    ca, cb = np.array([[2.0, 0.8], [0.8, 1.0]]), np.array([[0.5, -0.3], [-0.3, 3.0]])
    root = np.sqrt(np.trace(ca @ cb) + 2 * np.sqrt(np.linalg.det(ca) * np.linalg.det(cb)))
    want = ((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * root
    a, b = _with_moments(rng, mu_a, ca, 50), _with_moments(rng, mu_b, cb, 80)
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-9)


def test_symmetric_rotation_invariant_zero_on_itself_and_large_samples():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6)), rng.normal(size=(150, 6)) + 1.0
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    fd = frechet_distance(a, b)
    assert fd > 0 and frechet_distance(b, a) == pytest.approx(fd, rel=1e-8)
    assert frechet_distance(a @ q, b @ q) == pytest.approx(fd, rel=1e-7)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # the population distance between N(0, I) and N(μ, 4I) in 5-D is ‖μ‖² + 5 (2 − 1)²
    rng = np.random.default_rng(4)
    mu = np.array([1.0, 0.0, -1.0, 0.5, 0.0])
    x, y = rng.normal(size=(20000, 5)), mu + 2.0 * rng.normal(size=(20000, 5))
    assert frechet_distance(x, y) == pytest.approx(2.25 + 5.0, abs=0.1)


def test_shape_errors():
    with pytest.raises(ValueError, match="same number of columns"):
        frechet_distance(torch.zeros(5, 2), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="at least 2 rows"):
        frechet_distance(torch.zeros(1, 2), torch.zeros(5, 2))
