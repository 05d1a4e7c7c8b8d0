"""The collapsed Gibbs sweeps: exactness on a tiny problem, update bookkeeping, back-end agreement, alpha."""
import itertools
import math

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.special import gammaln

from replab.dpgmm import DPGMM
from replab.dpgmm._niw import log_crp, log_marginal_likelihood, make_prior
from replab.dpgmm.gibbs import HAVE_NUMBA, GibbsState, resample_alpha

POINTS = np.array([[0.0, 0.0], [0.4, 0.1], [2.5, 2.2], [2.9, 2.6], [1.2, 1.5]])


def _set_partitions(n):
    """All set partitions of range(n) as canonical label tuples (restricted growth strings)."""
    def grow(prefix, top):
        if len(prefix) == n:
            yield tuple(prefix)
            return
        for k in range(top + 2):
            yield from grow(prefix + [k], max(top, k))
    yield from grow([0], 0)


def _canonical(labels):
    seen = {}
    return tuple(seen.setdefault(int(v), len(seen)) for v in labels)


def _exact_posterior(x, prior, alpha=None):
    """p(c | X) over all partitions, with alpha fixed or integrated against its Gamma(1, 1) prior."""
    parts = list(_set_partitions(len(x)))
    logp = []
    for c in parts:
        counts = np.bincount(c)
        ll = log_marginal_likelihood(x, np.array(c), prior)
        if alpha is not None:
            logp.append(ll + log_crp(counts, alpha))
        else:
            f = lambda a: math.exp(-a + log_crp(counts, a))  # noqa: E731  (Gamma(1, 1) density e^{-a})
            logp.append(ll + math.log(integrate.quad(f, 0, np.inf)[0]))
    logp = np.array(logp)
    p = np.exp(logp - logp.max())
    return dict(zip(parts, p / p.sum()))


def _frequencies(model):
    keys = [_canonical(z) for z in model.assignments_.numpy()]
    out = {}
    for k in keys:
        out[k] = out.get(k, 0) + 1 / len(keys)
    return out


def _tv(p, q):
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def test_partitions_enumerated():
    assert len(list(_set_partitions(5))) == 52  # Bell number B5


def test_sampler_leaves_the_exact_posterior_invariant():
    model = DPGMM(n_sweeps=15_000, burn_in=100, thin=1, seed=3, fixed_alpha=1.0).fit(POINTS)
    exact = _exact_posterior(POINTS, model.prior_, 1.0)
    freq = _frequencies(model)
    assert _tv(freq, exact) < 0.03
    # the test has power: a neighbouring posterior (alpha four times larger) is clearly rejected
    assert _tv(freq, _exact_posterior(POINTS, model.prior_, 4.0)) > 0.06


def test_sampler_with_alpha_updates_targets_the_alpha_marginalised_posterior():
    # the estimator's loop (sweep, then alpha | K), without its trace bookkeeping; alpha mixes slowly, so a
    # longer chain than with alpha fixed
    rng = np.random.default_rng(3)
    prior = make_prior(POINTS)
    state = GibbsState(POINTS, rng.integers(0, 2, 5), prior)
    alpha, freq, n_sweeps = 1.0, {}, 30_000
    for sweep in range(n_sweeps + 100):
        state.sweep(rng.random(5), alpha)
        alpha = resample_alpha(alpha, state.n_active, 5, 1.0, 1.0, rng)
        if sweep >= 100:
            key = _canonical(state.z)
            freq[key] = freq.get(key, 0) + 1 / n_sweeps
    assert _tv(freq, _exact_posterior(POINTS, prior)) < 0.035
    assert _tv(freq, _exact_posterior(POINTS, prior, 1.0)) > 0.07


def test_rank_one_updates_agree_with_refactoring():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(200, 4)) + 3, rng.normal(size=(200, 4)) * 2])
    prior = make_prior(x)
    state = GibbsState(x, rng.integers(0, 8, len(x)), prior)
    for _ in range(25):  # 10,000 moves, each a downdate and an update
        state.sweep(rng.random(len(x)), 1.0)
    occ = state.occupied
    counts, means, chols = state.counts[occ].copy(), state.means[occ].copy(), state.chols[occ].copy()
    state.refactor()
    occ2 = state.occupied
    np.testing.assert_array_equal(counts, state.counts[occ2])
    np.testing.assert_allclose(means, state.means[occ2], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(chols, state.chols[occ2], rtol=1e-9, atol=1e-9)
    ll = log_marginal_likelihood(x, state.labels(), prior)
    np.testing.assert_allclose(state.log_likelihood(), ll, rtol=1e-10)


def test_torch_backend_matches_compiled_backend():
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(size=(40, 3)) + 4, rng.normal(size=(40, 3))])
    a = DPGMM(n_sweeps=6, burn_in=0, thin=1, seed=2, backend="numba", device="cpu").fit(x)
    b = DPGMM(n_sweeps=6, burn_in=0, thin=1, seed=2, backend="torch", device="cpu").fit(x)
    assert (a.assignments_ == b.assignments_).all()
    np.testing.assert_allclose(a.log_likelihood_trace_.numpy(), b.log_likelihood_trace_.numpy(), rtol=1e-10)
    for ca, cb in zip(a.cholesky_, b.cholesky_):
        np.testing.assert_allclose(ca.numpy(), cb.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_run_matches_cpu_run():
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.normal(size=(30, 3)) + 4, rng.normal(size=(30, 3))])
    a = DPGMM(n_sweeps=4, burn_in=0, thin=1, seed=2, device="cpu").fit(x)
    b = DPGMM(n_sweeps=4, burn_in=0, thin=1, seed=2, device="cuda", backend="torch").fit(x)
    assert b.backend_ == "torch" and (a.assignments_ == b.assignments_).all()
    c = DPGMM(n_sweeps=4, burn_in=0, thin=1, seed=2, device="cuda").fit(x)  # auto: the compiled sweep
    assert c.backend_ == ("numba" if HAVE_NUMBA else "torch") and (a.assignments_ == c.assignments_).all()
    assert c.predictive().mixture_distribution.probs.device.type == "cuda"
    torch.testing.assert_close(a.score_samples(x[:5]), b.score_samples(x[:5]))


def _alpha_posterior_mean(k, n, a=1.0, b=1.0):
    # p(alpha | K, N) ∝ alpha^(a-1) e^(-b alpha) alpha^K Gamma(alpha) / Gamma(alpha + N)
    logf = lambda al: (a - 1 + k) * math.log(al) - b * al + gammaln(al) - gammaln(al + n)  # noqa: E731
    top = max(logf(al) for al in np.linspace(0.01, 20, 2000))
    z = integrate.quad(lambda al: math.exp(logf(al) - top), 0, np.inf)[0]
    return integrate.quad(lambda al: al * math.exp(logf(al) - top), 0, np.inf)[0] / z


def test_alpha_update_targets_its_conditional_and_legacy_is_biased():
    rng = np.random.default_rng(0)
    k, n = 6, 200
    exact = _alpha_posterior_mean(k, n)
    for legacy, check in ((False, lambda m: abs(m - exact) < 0.02 * exact),
                          (True, lambda m: m > 1.05 * exact)):
        alpha, draws = 1.0, []
        for _ in range(40_000):
            alpha = resample_alpha(alpha, k, n, 1.0, 1.0, rng, legacy=legacy)
            draws.append(alpha)
        assert check(np.mean(draws[1000:])), (legacy, np.mean(draws), exact)
