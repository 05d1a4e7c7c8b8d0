"""NIW algebra: rank-one Cholesky updates and the closed-form marginal likelihood."""
import numpy as np
import torch
import scipy.stats as ss

from replab.dpgmm._niw import (cholesky_update, component_statistics, log_marginal_likelihood, make_prior,
                               predictive_df, predictive_scale_factor)


def test_cholesky_update_and_downdate_batched():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 9, 5))
    s = np.einsum("bni,bnj->bij", a, a)
    u = torch.tensor(np.linalg.cholesky(s))
    x = torch.tensor(rng.normal(size=(4, 5)))
    up = cholesky_update(u, x, 1.0)
    want = s + np.einsum("bi,bj->bij", x.numpy(), x.numpy())
    np.testing.assert_allclose((up @ up.transpose(-1, -2)).numpy(), want, rtol=1e-10, atol=1e-10)
    assert torch.equal(up, torch.tril(up))
    down = cholesky_update(up, x, -1.0)
    np.testing.assert_allclose(down.numpy(), u.numpy(), rtol=1e-9, atol=1e-10)
    mixed = cholesky_update(up, x, torch.tensor([-1.0, 1.0, -1.0, 1.0], dtype=torch.float64))
    np.testing.assert_allclose(mixed[0].numpy(), u[0].numpy(), atol=1e-10)
    np.testing.assert_allclose(mixed[1].numpy(), cholesky_update(up[1], x[1], 1.0).numpy(), atol=1e-12)


def test_marginal_likelihood_equals_chain_of_predictives():
    # p(x_1..x_n) = prod_i p(x_i | x_<i): each factor is the Student-t predictive of the points seen so far
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.5]])
    prior = make_prior(x, kappa0=0.05, n_init_components=3)
    total = 0.0
    for i in range(len(x)):
        if i == 0:
            m, u = prior.mu0, prior.chol0
        else:
            _, m, u = component_statistics(x[:i], prior)
        df = float(predictive_df(i, prior))
        scale = float(predictive_scale_factor(i, prior)) ** 2 * (u @ u.T)
        total += ss.multivariate_t(m, scale, df=df).logpdf(x[i])
    closed = log_marginal_likelihood(x, np.zeros(len(x), dtype=int), prior)
    np.testing.assert_allclose(closed, total, rtol=1e-10)


def test_prior_defaults_follow_the_paper_code():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(100, 4)) * [1, 2, 3, 4]
    prior = make_prior(x)
    assert prior.nu0 == 6 and prior.kappa0 == 0.01
    np.testing.assert_allclose(prior.mu0, x.mean(0))
    k0 = int(np.log2(101))
    np.testing.assert_allclose(prior.chol0 @ prior.chol0.T, np.diag(x.var(0) / k0 ** (2 / 4)))
