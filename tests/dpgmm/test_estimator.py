"""DPGMM estimator: recovery on separated mixtures, the predictive, reproducibility and input errors."""
import numpy as np
import pytest
import torch
from scipy import integrate

from replab.dpgmm import DPGMM

CENTERS = np.array([[-12.0, 0.0], [0.0, 10.0], [12.0, -3.0]])


def _mixture(seed=0, n=150):
    rng = np.random.default_rng(seed)
    return np.concatenate([c + rng.normal(size=(n, 2)) @ np.array([[1.0, 0.3], [0.0, 0.8]]) for c in CENTERS])


@pytest.fixture(scope="module")
def fitted():
    return DPGMM(n_sweeps=80, burn_in=40, thin=5, seed=0).fit(_mixture())


def test_recovers_number_of_components_and_means(fitted):
    assert (fitted.n_components_ == 3).float().mean() >= 0.75
    for counts, means in zip(fitted.counts_, fitted.means_):
        big = means[counts >= 50].numpy()
        assert len(big) == 3
        # each true centre has a component mean within 0.3 of it
        dist = np.linalg.norm(big[:, None] - CENTERS[None], axis=-1)
        assert dist.min(0).max() < 0.3


def test_traces_have_the_documented_shapes(fitted):
    t = len(fitted.kept_sweeps_)
    assert fitted.kept_sweeps_.tolist() == [45, 50, 55, 60, 65, 70, 75, 80]
    assert fitted.assignments_.shape == (t, 450)
    assert fitted.alpha_trace_.shape == (80,) and fitted.n_components_trace_.shape == (80,)
    for z, counts, chol in zip(fitted.assignments_, fitted.counts_, fitted.cholesky_):
        np.testing.assert_array_equal(np.bincount(z.numpy()), counts.numpy())
        assert torch.allclose(chol, torch.tril(chol))
    assert torch.equal(fitted.alpha_, fitted.alpha_trace_[fitted.kept_sweeps_ - 1])


def test_same_seed_same_trace():
    x = _mixture(seed=1, n=40)
    a = DPGMM(n_sweeps=15, burn_in=5, thin=2, seed=7).fit(x)
    b = DPGMM(n_sweeps=15, burn_in=5, thin=2, seed=7).fit(x)
    c = DPGMM(n_sweeps=15, burn_in=5, thin=2, seed=8).fit(x)
    assert torch.equal(a.assignments_, b.assignments_) and torch.equal(a.alpha_trace_, b.alpha_trace_)
    assert torch.equal(a.log_likelihood_trace_, b.log_likelihood_trace_)
    assert not torch.equal(a.alpha_trace_, c.alpha_trace_)
    assert torch.equal(a.sample(10, seed=3), b.sample(10, seed=3))


@pytest.mark.parametrize("weights", ["crp", "alpha_plus_n"])
def test_predictive_integrates_to_one_in_1d(weights):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-3, 1, 60), rng.normal(4, 0.5, 60)])[:, None]
    model = DPGMM(n_sweeps=20, burn_in=10, thin=5, seed=0, predictive_weights=weights).fit(x)
    dist = model.predictive()  # Eq. 6: the mixture over both kept sweeps, as score_samples uses
    dens = lambda v: float(dist.log_prob(torch.tensor([[v]], dtype=torch.float64)).exp())  # noqa: E731
    # heavy (3 degrees of freedom) tails: integrate over the whole line
    total = sum(integrate.quad(dens, a, b, limit=200)[0] for a, b in [(-np.inf, -10), (-10, 10), (10, np.inf)])
    assert abs(total - 1) < 1e-4


def test_predictive_integrates_to_one_in_2d(fitted):
    g = np.linspace(-60, 60, 481)
    xx, yy = np.meshgrid(g, g)
    grid = torch.tensor(np.stack([xx.ravel(), yy.ravel()], 1))
    dens = fitted.predictive(0).log_prob(grid).exp().numpy()
    mass = dens.sum() * (g[1] - g[0]) ** 2
    # the prior-predictive component has 3 degrees of freedom, so a little mass lies beyond the box
    assert 0.98 < mass < 1.0


def test_score_samples_is_the_average_over_kept_sweeps(fitted):
    x = torch.tensor(_mixture(seed=3, n=5))
    per = torch.stack([fitted.predictive(t).log_prob(x) for t in range(len(fitted.kept_sweeps_))])
    want = torch.logsumexp(per, 0) - np.log(per.shape[0])
    torch.testing.assert_close(fitted.score_samples(x), want)


def test_predictive_weighting_variants(fitted):
    crp = fitted.predictive(0)
    paper = DPGMM(predictive_weights="alpha_plus_n")
    paper.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    legacy = paper.predictive(0)
    k = len(fitted.counts_[0])
    n, alpha = 450.0, float(fitted.alpha_[0])
    probs = crp.mixture_distribution.probs
    torch.testing.assert_close(probs[:k], fitted.counts_[0].double() / (n + alpha))
    torch.testing.assert_close(probs[k], torch.tensor(alpha / (n + alpha), dtype=torch.float64))
    torch.testing.assert_close(legacy.mixture_distribution.probs, (fitted.counts_[0].double() + alpha) / (n + k * alpha))


def test_sample_follows_the_data(fitted):
    s = fitted.sample(20_000, seed=0).numpy()
    x = _mixture()
    np.testing.assert_allclose(np.median(s, 0), np.median(x, 0), atol=0.5)


@pytest.mark.parametrize("x, message", [
    (np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 1.0]]), "X: contains NaN values"),
    (np.array([[0.0, 1.0]]), "X: needs at least 2 examples, got 1"),
    (np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]]), r"X: feature\(s\) \[1\] are constant"),
    (np.random.default_rng(0).normal(size=(5, 8)), r"X: has 8 features but only 5 examples"),
    (np.zeros(5), r"X: expected a matrix of shape"),
])
def test_bad_input_is_rejected(x, message):
    with pytest.raises(ValueError, match=message):
        DPGMM(n_sweeps=2, burn_in=0, thin=1).fit(x)


@pytest.mark.parametrize("kwargs, message", [
    (dict(burn_in=10, n_sweeps=10), "burn_in: expected fewer than n_sweeps=10 sweeps, got 10"),
    (dict(thin=0), "thin: expected an integer >= 1, got 0"),
    (dict(predictive_weights="paper"), "predictive_weights: expected 'crp' or 'alpha_plus_n', got 'paper'"),
    (dict(nu0=1.0), r"nu0: expected a number > D - 1 = 1, got 1.0"),
    (dict(kappa0=-1), "kappa0: expected a positive number, got -1"),
])
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DPGMM(**kwargs).fit(_mixture(n=5))


def test_unfitted_model_raises():
    with pytest.raises(ValueError, match="not fitted"):
        DPGMM().score_samples(np.zeros((2, 2)))
