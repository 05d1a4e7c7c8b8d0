"""MultivariateStudentT and its mixtures against scipy's densities."""
import numpy as np
import pytest
import scipy.stats as ss
import torch

from replab.distributions import (MultivariateStudentT, sample_student_t_mixture, student_t_marginal_mixture,
                                  student_t_mixture)


def _random_tril(rng, d):
    a = rng.normal(size=(d + 2, d))
    return np.linalg.cholesky(a.T @ a / d)


@pytest.mark.parametrize("d", [1, 3, 6])
def test_log_prob_matches_scipy(d):
    rng = np.random.default_rng(d)
    tril, loc, df = _random_tril(rng, d), rng.normal(size=d), 3.7
    x = rng.normal(size=(20, d)) * 2
    ours = MultivariateStudentT(torch.tensor(df, dtype=torch.float64), torch.tensor(loc), torch.tensor(tril)).log_prob(torch.tensor(x))
    ref = ss.multivariate_t(loc=loc, shape=tril @ tril.T, df=df).logpdf(x)
    np.testing.assert_allclose(ours.numpy(), np.atleast_1d(ref), rtol=1e-10, atol=1e-10)


def test_batched_log_prob_and_shapes():
    rng = np.random.default_rng(0)
    trils = np.stack([_random_tril(rng, 2) for _ in range(4)])
    locs, dfs = rng.normal(size=(4, 2)), np.array([2.5, 3.0, 10.0, 50.0])
    dist = MultivariateStudentT(torch.tensor(dfs), torch.tensor(locs), torch.tensor(trils))
    assert dist.batch_shape == (4,) and dist.event_shape == (2,)
    x = rng.normal(size=(7, 1, 2))
    got = dist.log_prob(torch.tensor(x))
    assert got.shape == (7, 4)
    for k in range(4):
        ref = ss.multivariate_t(loc=locs[k], shape=trils[k] @ trils[k].T, df=dfs[k]).logpdf(x[:, 0])
        np.testing.assert_allclose(got[:, k].numpy(), ref, rtol=1e-10)
    assert dist.rsample((5,)).shape == (5, 4, 2)


def test_sample_moments():
    rng = np.random.default_rng(1)
    tril, loc = torch.tensor(_random_tril(rng, 3)), torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    dist = MultivariateStudentT(torch.tensor(8.0, dtype=torch.float64), loc, tril)
    torch.manual_seed(0)
    x = dist.sample((200_000,))
    np.testing.assert_allclose(x.mean(0).numpy(), loc.numpy(), atol=0.02)
    np.testing.assert_allclose(torch.cov(x.T).numpy(), dist.covariance_matrix.numpy(), rtol=0.05, atol=0.02)


def test_argument_validation():
    with pytest.raises(ValueError, match="scale_tril"):
        MultivariateStudentT(3.0, torch.zeros(2), torch.eye(3))
    with pytest.raises(ValueError):
        MultivariateStudentT(torch.tensor(3.0), torch.zeros(2), torch.tensor([[1.0, 1.0], [0.0, 1.0]]),
                             validate_args=True)
    with pytest.raises(ValueError):
        MultivariateStudentT(torch.tensor(-1.0), torch.zeros(2), torch.eye(2), validate_args=True)


def test_mixture_and_marginals_against_scipy():
    rng = np.random.default_rng(2)
    k, d = 3, 2
    trils = np.stack([_random_tril(rng, d) for _ in range(k)])
    locs, dfs, w = rng.normal(size=(k, d)) * 3, np.array([3.0, 5.0, 9.0]), np.array([0.2, 0.5, 0.3])
    t = [torch.tensor(v) for v in (w, dfs, locs, trils)]
    x = rng.normal(size=(10, d)) * 3
    got = student_t_mixture(*t).log_prob(torch.tensor(x)).numpy()
    ref = np.log(sum(w[j] * ss.multivariate_t(locs[j], trils[j] @ trils[j].T, df=dfs[j]).pdf(x) for j in range(k)))
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    scales = np.sqrt(np.einsum("kij,kij->ki", trils, trils))
    marg = student_t_marginal_mixture(t[0], t[1], t[2], torch.tensor(scales)).log_prob(torch.tensor(x)).numpy()
    for i in range(d):
        ref_i = np.log(sum(w[j] * ss.t(dfs[j], locs[j, i], scales[j, i]).pdf(x[:, i]) for j in range(k)))
        np.testing.assert_allclose(marg[:, i], ref_i, rtol=1e-10)
    torch.manual_seed(0)
    draws = sample_student_t_mixture(*t, 100_000)
    np.testing.assert_allclose(draws.mean(0).numpy(), w @ locs, atol=0.05)
