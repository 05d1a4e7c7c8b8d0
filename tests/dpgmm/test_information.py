"""Relative entropy (Eq. 7) and total correlation (Eq. 10) against Gaussian closed forms."""
import numpy as np
import pytest

from replab.dpgmm import DPGMM, relative_entropy, total_correlation

CORR = np.array([[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 1.0]])


def _fit(x):
    # few sweeps: the predictive of a single Gaussian is nearly Gaussian after any reasonable partition
    return DPGMM(n_sweeps=40, burn_in=20, thin=10, seed=0).fit(x)


@pytest.fixture(scope="module")
def correlated():
    rng = np.random.default_rng(0)
    x = rng.multivariate_normal(np.zeros(3), CORR, size=3000) * [1.0, 5.0, 0.1] + [2.0, -1.0, 0.0]
    return x, _fit(x)


def test_correlated_gaussian_matches_closed_form(correlated):
    x, model = correlated
    # for a Gaussian both divergences equal -1/2 log det(correlation)
    closed = -0.5 * np.log(np.linalg.det(np.corrcoef(x.T)))
    re = relative_entropy(model, n_samples=20_000, seed=0)
    tc = total_correlation(model, n_samples=20_000, seed=0)
    assert re.min <= re.mean <= re.max and len(re.per_trace) == 2
    assert abs(re.mean - closed) < 0.05 * closed
    assert abs(tc.mean - closed) < 0.05 * closed


def test_legacy_marginal_scale_biases_total_correlation_upwards(correlated):
    _, model = correlated
    tc = total_correlation(model, n_samples=20_000, seed=0)
    legacy = total_correlation(model, n_samples=20_000, seed=0, tc_marginal_scale="legacy_chol_diag")
    assert legacy.mean > tc.mean + 0.1


def test_independent_gaussian_is_near_zero():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 3)) * [1.0, 3.0, 0.2]
    model = _fit(x)
    assert abs(relative_entropy(model, n_samples=20_000).mean) < 0.03
    assert abs(total_correlation(model, n_samples=20_000).mean) < 0.03


def test_same_seed_same_estimate(correlated):
    _, model = correlated
    a = relative_entropy(model, n_samples=2000, seed=4)
    b = relative_entropy(model, n_samples=2000, seed=4)
    assert a.mean == b.mean


def test_bad_arguments(correlated):
    _, model = correlated
    with pytest.raises(ValueError, match="tc_marginal_scale"):
        total_correlation(model, tc_marginal_scale="chol")
    with pytest.raises(ValueError, match="n_samples: expected an integer >= 1, got 0"):
        relative_entropy(model, n_samples=0)
    with pytest.raises(ValueError, match="expected a fitted DPGMM"):
        relative_entropy(DPGMM())
