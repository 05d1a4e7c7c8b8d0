"""Objectives against independent oracles: torch.distributions, closed forms, brute-force formulations."""
import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from torch import distributions as D
from torch import nn

from replab import objectives as O
from replab.models import MLPConfig, build
from replab.models.vae import VAE


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _posterior(b=6, d=4, seed=0, dtype=torch.float64):
    g = _gen(seed)
    mu = torch.randn(b, d, generator=g, dtype=dtype)
    logvar = torch.randn(b, d, generator=g, dtype=dtype) * 0.5
    z = mu + torch.exp(0.5 * logvar) * torch.randn(b, d, generator=g, dtype=dtype)
    return mu, logvar, z


def test_kl_matches_torch_distributions():
    mu, logvar, _ = _posterior()
    q = D.Normal(mu, torch.exp(0.5 * logvar))
    p = D.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.testing.assert_close(O.kl_diagonal_gaussian(mu, logvar), D.kl_divergence(q, p).sum(-1))


def test_beta_vae_weights_the_kl():
    mu, logvar, _ = _posterior()
    log_px = -torch.rand(6, dtype=torch.float64) * 100
    one, four = O.beta_vae(log_px, mu, logvar, 1.0), O.beta_vae(log_px, mu, logvar, 4.0)
    torch.testing.assert_close(four["loss"] - one["loss"], 3 * one["kl"])
    torch.testing.assert_close(one["loss"], -log_px.mean() + O.kl_diagonal_gaussian(mu, logvar).mean())


def test_beta_tc_vae_at_beta_one_is_the_vae_loss():
    model = build(MLPConfig(latent_dim=5, hidden=(16,), input_shape=(12,)))
    x = torch.rand(8, 12).round()
    vae = O.OBJECTIVES["beta_vae"](model, x, 0, _gen(3), beta=1.0)
    tc1 = O.OBJECTIVES["beta_tc_vae"](model, x, 0, _gen(3), beta=1.0)
    tc6 = O.OBJECTIVES["beta_tc_vae"](model, x, 0, _gen(3), beta=6.0)
    torch.testing.assert_close(tc1["loss"], vae["loss"])
    torch.testing.assert_close(tc6["loss"] - tc1["loss"], 5 * tc1["tc"])
    assert abs(tc1["tc"].detach().item()) > 1e-4  # the TC term is live, so β > 1 changes the loss


def test_total_correlation_matches_a_brute_force_mixture():
    mu, logvar, z = _posterior(b=7, d=3)
    m, d = z.shape
    log_q = np.zeros(m)
    log_prod = np.zeros(m)
    for i in range(m):
        comps = D.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z[i])  # (M, d) over mixture members k
        log_q[i] = logsumexp(comps.sum(-1).numpy()) - math.log(m)
        log_prod[i] = sum(logsumexp(comps[:, j].numpy()) - math.log(m) for j in range(d))
    want = float(np.mean(log_q - log_prod))
    assert float(O.total_correlation(z, mu, logvar)) == pytest.approx(want, abs=1e-10)
    # disentanglement_lib drops the normalisers: an offset of −(d − 1)·log M; Chen et al.'s MWS uses log(N·M)
    dlib = float(O.total_correlation(z, mu, logvar, drop_constants=True))
    assert dlib == pytest.approx(want - (d - 1) * math.log(m), abs=1e-10)
    mws = float(O.total_correlation(z, mu, logvar, dataset_size=1000))
    assert mws == pytest.approx(want + (d - 1) * math.log(1000), abs=1e-10)


@pytest.mark.parametrize("rho", [0.0, 0.6])
def test_total_correlation_of_gaussians_matches_the_closed_form(rho):
    # Posteriors N(μ_k, s²I) with μ_k ~ N(0, Σ): the aggregate is N(0, Σ + s²I), whose TC is −½ log det(corr).
    g = _gen(11)
    m, s2 = 1500, 0.25
    cov = torch.tensor([[1.0, rho, 0.0], [rho, 1.0, rho / 2], [0.0, rho / 2, 1.0]], dtype=torch.float64)
    mu = torch.randn(m, 3, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    logvar = torch.full_like(mu, math.log(s2))
    z = mu + math.sqrt(s2) * torch.randn(m, 3, generator=g, dtype=torch.float64)
    total = cov + s2 * torch.eye(3, dtype=torch.float64)
    sd = total.diagonal().sqrt()
    want = -0.5 * float(torch.logdet(total / sd[:, None] / sd[None, :]))
    assert float(O.total_correlation(z, mu, logvar)) == pytest.approx(want, abs=0.035)


def test_annealed_vae_capacity_schedule():
    assert [O.capacity(t, 25.0, 100) for t in (0, 50, 100, 1000)] == [0.0, 12.5, 25.0, 25.0]
    mu, logvar, _ = _posterior()
    log_px = -torch.rand(6, dtype=torch.float64)
    kl = O.kl_diagonal_gaussian(mu, logvar).mean()
    out = O.annealed_vae(log_px, mu, logvar, step=30, gamma=1000.0, c_max=10.0, iteration_threshold=100)
    torch.testing.assert_close(out["loss"], -log_px.mean() + 1000.0 * (kl - 3.0).abs())
    with pytest.raises(ValueError, match="annealed_vae: iteration_threshold must be positive"):
        O.annealed_vae(log_px, mu, logvar, step=0, iteration_threshold=0)


def test_dip_vae_ii_penalty():
    g = _gen(5)
    m, d = 256, 4
    raw = torch.randn(m, d, generator=g, dtype=torch.float64) @ torch.randn(d, d, generator=g, dtype=torch.float64)
    centred = raw - raw.mean(0)
    # whiten so that Cov_batch(μ) = ½I and add posterior variances ½: the covariance of z is I, penalty 0
    white = centred @ torch.linalg.inv(torch.linalg.cholesky(centred.T @ centred / m)).T * math.sqrt(0.5)
    logvar = torch.full((m, d), math.log(0.5), dtype=torch.float64)
    assert float(O.dip_vae_ii_penalty(white, logvar, 10.0, 5.0)) == pytest.approx(0.0, abs=1e-20)
    cov = np.cov(raw.numpy().T, bias=True) + np.diag(np.exp(logvar.numpy()).mean(0))
    off = cov - np.diag(np.diag(cov))
    want = 2.0 * (off ** 2).sum() + 3.0 * ((np.diag(cov) - 1) ** 2).sum()
    assert float(O.dip_vae_ii_penalty(raw, logvar, 2.0, 3.0)) == pytest.approx(want, rel=1e-10)


def test_mmd_self_is_zero_and_grows_with_a_shift():
    g = _gen(2)
    x = torch.randn(300, 5, generator=g, dtype=torch.float64)
    y = torch.randn(300, 5, generator=g, dtype=torch.float64)
    scale = 2 * 5 * 2.0
    assert float(O.mmd(x, x, scale)) == pytest.approx(0.0, abs=1e-12)
    values = [float(O.mmd(x, y + shift, scale, unbiased=True)) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert abs(values[0]) < 0.01 and values == sorted(values) and values[-1] > 0.1
    # the U-statistic by its definition, pair by pair
    a, b = x[:20], y[:15] + 0.3

    def k(u, v):
        return scale / (scale + float(((u - v) ** 2).sum()))

    sxx = sum(k(a[i], a[j]) for i in range(20) for j in range(20) if i != j) / (20 * 19)
    syy = sum(k(b[i], b[j]) for i in range(15) for j in range(15) if i != j) / (15 * 14)
    sxy = sum(k(a[i], b[j]) for i in range(20) for j in range(15)) / (20 * 15)
    assert float(O.mmd(a, b, scale, unbiased=True)) == pytest.approx(sxx + syy - 2 * sxy, rel=1e-10)


def test_mmd_vae_uses_the_configured_prior():
    z = torch.randn(500, 3, generator=_gen(4), dtype=torch.float64) * math.sqrt(2.0)
    log_px = torch.zeros(500, dtype=torch.float64)
    right = O.mmd_vae(log_px, z, prior_variance=2.0, unbiased=True, generator=_gen(9))["mmd"]
    wrong = O.mmd_vae(log_px, z, prior_variance=0.2, unbiased=True, generator=_gen(9))["mmd"]
    assert abs(float(right)) < 0.01 < float(wrong)


def test_renyi_bound_limits_on_fixed_weights():
    log_w = torch.randn(50, 4, generator=_gen(6), dtype=torch.float64) * 3 - 100
    elbo = log_w.mean(0)
    iwae = torch.as_tensor(logsumexp(log_w.numpy(), axis=0) - math.log(50))
    torch.testing.assert_close(O.renyi_bound(log_w, 1.0), elbo)
    torch.testing.assert_close(O.renyi_bound(log_w, 1.0 - 1e-7), elbo, atol=1e-4, rtol=0)
    torch.testing.assert_close(O.renyi_bound(log_w, 0.0), iwae)
    # L_α is non-increasing in α (Li & Turner 2016, Theorem 1)
    values = torch.stack([O.renyi_bound(log_w, a) for a in (-1.0, 0.0, 0.5, 1.0, 2.0)])
    assert bool((values[:-1] >= values[1:] - 1e-12).all())


@pytest.mark.parametrize("alpha", [1 - 1e-6, 1 + 1e-6, 0.999, 0.5, 0.0, -2.0, 5.0])
def test_renyi_bound_is_accurate_in_float32(alpha):
    # log-weights of an MNIST-sized model (around -100 nats, K = 2000), the reference in float64 by its
    # definition; near α = 1 the plain logsumexp form loses ~0.3 nats in float32
    log_w = torch.randn(2000, 8, generator=_gen(12), dtype=torch.float64) * 3 - 100
    a = 1.0 - alpha
    want = (torch.as_tensor(logsumexp(a * log_w.numpy(), axis=0)) - math.log(2000)) / a
    got = O.renyi_bound(log_w.float(), alpha).double()
    torch.testing.assert_close(got, want, atol=2e-4, rtol=0)
    grad_in = log_w.float().requires_grad_()
    O.renyi_bound(grad_in, alpha).sum().backward()
    # d L_α / d log w_k = softmax((1 − α) log w)_k per column: the normalised weights of the bound
    torch.testing.assert_close(grad_in.grad.double(), torch.softmax(a * log_w, 0), atol=1e-6, rtol=1e-4)


class _LinearGaussian(VAE):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I) with orthogonal columns of W, so the exact posterior is diagonal."""

    def __init__(self, w, b, s2, exact=True):
        super().__init__("gaussian", s2)
        dim, d = w.shape
        self.input_shape = (dim,)
        self.output = nn.Linear(d, dim).double()
        self.output.weight.data, self.output.bias.data = w.clone(), b.clone()
        post_var = 1.0 / (1.0 + (w ** 2).sum(0) / s2)
        a = post_var[:, None] * w.T / s2  # posterior mean A(x − b)
        if not exact:
            a, post_var = a * 0.8, post_var * 1.5
        self.mean = nn.Linear(dim, d).double()
        self.mean.weight.data, self.mean.bias.data = a, -a @ b
        self.variance = nn.Linear(dim, d).double()
        self.variance.weight.data.zero_()
        self.variance.bias.data = post_var.log()


@pytest.mark.parametrize("exact", [True, False])
def test_importance_sampled_log_likelihood_of_a_linear_gaussian_model(exact):
    g = _gen(7)
    dim, d, s2 = 6, 3, 0.5
    q, _ = torch.linalg.qr(torch.randn(dim, d, generator=g, dtype=torch.float64))
    w = q * torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)
    b = torch.randn(dim, generator=g, dtype=torch.float64)
    model = _LinearGaussian(w, b, s2, exact)
    x = torch.randn(5, dim, generator=g, dtype=torch.float64) * 2 + b
    want = D.MultivariateNormal(b, w @ w.T + s2 * torch.eye(dim, dtype=torch.float64)).log_prob(x)
    got = O.importance_log_likelihood(model, x, n_samples=2000, chunk=300, generator=_gen(8))
    torch.testing.assert_close(got, want, atol=1e-9 if exact else 0.05, rtol=0)
    auto = O.importance_log_likelihood(model, x, n_samples=2000, generator=_gen(9))  # one chunk of 2000
    small = O.importance_log_likelihood(model, x, n_samples=2000, chunk=7, generator=_gen(9))
    torch.testing.assert_close(auto, want, atol=1e-9 if exact else 0.05, rtol=0)
    torch.testing.assert_close(small, want, atol=1e-9 if exact else 0.05, rtol=0)
    # the ELBO (α = 1) lies below it unless the posterior is exact
    elbo = O.renyi_bound(O.log_importance_weights(model, x, 4000, _gen(1)), 1.0)
    assert bool((elbo <= want + 1e-9).all()) and (exact or bool((elbo < want - 0.01).all()))


def test_renyi_objective_and_bad_arguments():
    model = build(MLPConfig(latent_dim=3, hidden=(8,), input_shape=(10,)))
    x = torch.rand(4, 10).round()
    out = O.OBJECTIVES["renyi"](model, x, 0, _gen(0), alpha=0.5, n_samples=3)
    assert out["loss"].ndim == 0 and out["loss"].requires_grad
    with pytest.raises(ValueError, match="renyi_vae: n_samples must be a positive integer"):
        O.renyi_vae(model, x, n_samples=0)
    with pytest.raises(ValueError, match="objective must be one of"):
        O.objective("factor_vae")
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        O.importance_log_likelihood(model, x, n_samples=-1)
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        O.renyi_bound(torch.zeros(3, 2), float("nan"))


def test_legacy_argo_reduction_is_the_whole_tensor_lse_and_not_the_vr_bound():
    # equal log-weights c: the VR bound is c at every α, the public code's reduction c + log(K·B)/(1 − α)
    k, b, c = 5, 3, -2.5
    log_w = torch.full((k, b), c, dtype=torch.float64)
    for alpha in (0.0, 0.5, -1.0):
        assert torch.allclose(O.renyi_bound(log_w, alpha), torch.full((b,), c, dtype=torch.float64))
        legacy = O.legacy_argo_renyi_bound(log_w, alpha)
        assert legacy.ndim == 0
        assert abs(legacy.item() - (c + math.log(k * b) / (1 - alpha))) < 1e-12
    # random weights: scipy's logsumexp over every entry
    lw = torch.randn(7, 4, generator=_gen(3), dtype=torch.float64)
    want = logsumexp(0.3 * lw.numpy()) / 0.3
    assert abs(O.legacy_argo_renyi_bound(lw, 0.7).item() - want) < 1e-12
    with pytest.raises(ValueError, match="other than 1"):
        O.legacy_argo_renyi_bound(lw, 1.0)
    model = build(MLPConfig(latent_dim=3, hidden=(8,), input_shape=(10,)))
    x = torch.rand(4, 10).round()
    old = O.OBJECTIVES["renyi"](model, x, 0, _gen(0), alpha=0.5, n_samples=3, legacy_argo_reduction=True)
    with torch.no_grad():
        lw = O.log_importance_weights(model, x, 3, _gen(0))
    assert abs(old["bound"].item() - O.legacy_argo_renyi_bound(lw, 0.5).item() / 4) < 1e-5
    assert old["loss"].requires_grad


def test_binary_cross_entropy_is_the_mean_logistic_loss_and_stays_finite():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 7, generator=g, dtype=torch.float64) * 3
    targets = (torch.rand(50, 7, generator=g) < 0.3).long()
    out = O.binary_cross_entropy(logits, targets)
    p = 1 / (1 + torch.exp(-logits))
    expected = -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).mean()
    torch.testing.assert_close(out["loss"], expected)
    assert out["accuracy"].item() == pytest.approx(((p > 0.5).long() == targets).double().mean().item())
    # a confident wrong answer costs about |logit| nats, without overflow in float32
    far = O.binary_cross_entropy(torch.tensor([[200.0, -200.0]]), torch.tensor([[0, 1]]))
    assert far["loss"].item() == pytest.approx(200.0) and far["accuracy"] == 0


def test_renyi_bound_of_a_tensor_alpha_equals_the_scalar_form_with_finite_gradients():
    # the form stacked groups use (one α per member under vmap): the same values, and no NaN gradient from the
    # branch not taken (α = 1 divides by 1 − α = 0 there)
    g = torch.Generator().manual_seed(3)
    log_w = (torch.randn(5, 7, generator=g, dtype=torch.float64) * 40).requires_grad_(True)
    for alpha in (-1.0, 0.0, 0.5, 1.0, 2.0):
        want = O.renyi_bound(log_w, alpha)
        got = O.renyi_bound(log_w, torch.tensor(alpha, dtype=torch.float64))
        torch.testing.assert_close(got, want)
        grad_want, = torch.autograd.grad(want.sum(), log_w)
        grad_got, = torch.autograd.grad(got.sum(), log_w)
        assert torch.isfinite(grad_got).all()
        torch.testing.assert_close(grad_got, grad_want)
    stacked = torch.func.vmap(O.renyi_bound, in_dims=(None, 0))(log_w, torch.tensor([0.0, 1.0, 2.0],
                                                                                     dtype=torch.float64))
    torch.testing.assert_close(stacked, torch.stack([O.renyi_bound(log_w, a) for a in (0.0, 1.0, 2.0)]))
