"""DP-GMM collapsed Gibbs sampler: microseconds per point update and sweeps per second at N = 10,000.

Compares replab's compiled sweep with
(a) a plain NumPy version of the same sampler written the obvious way (per point: remove it from its component's
    sums, rebuild and factor every component's predictive, draw, add it back), and
(b) scikit-learn's ``BayesianGaussianMixture`` (truncated variational DP mixture, a different method): seconds per
    iteration and the number of components it keeps,
times the single-chain torch back-end and the lockstep multi-chain sampler (``GibbsChains``, for GPUs),
and extrapolates the time of 2,000 sweeps on the paper's largest CNN layer set (25,600 points, 81 dimensions).

Run: ``python benchmarks/dpgmm.py`` (``--quick`` for a short run). Times are wall-clock and CPU (process) time;
on a shared machine the CPU time is the steadier figure.
"""
from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
import torch

from replab.dpgmm._niw import default_init_components, make_prior
from replab.dpgmm.chains import GibbsChains
from replab.dpgmm.gibbs import GibbsState


def mixture_data(n: int, d: int, n_clusters: int, seed: int = 0) -> np.ndarray:
    """``n`` points from ``n_clusters`` unit-variance Gaussians with centres drawn at scale 3 in ``d`` dimensions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, d)) * 3.0
    return centres[rng.integers(0, n_clusters, n)] + rng.normal(size=(n, d))


def time_replab(x: np.ndarray, n_warm: int, n_timed: int, backend: str = "numba", n_points: int | None = None):
    """Seconds per point update (wall, CPU) of the replab sweep after ``n_warm`` warm-up sweeps, and K."""
    rng = np.random.default_rng(0)
    prior = make_prior(x)
    state = GibbsState(x, rng.integers(0, default_init_components(len(x)), len(x)), prior, backend=backend)
    for _ in range(n_warm):
        state.sweep(rng.random(len(x)), 1.0)
    if n_points is not None:  # time one sweep over the first n_points only (slow back-ends)
        sub = GibbsState(x[:n_points], state.z[:n_points], prior, backend=backend)
        w0, c0 = time.perf_counter(), time.process_time()
        sub.sweep(rng.random(n_points), 1.0)
        return (time.perf_counter() - w0) / n_points, (time.process_time() - c0) / n_points, sub.n_active
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n_timed):
        state.sweep(rng.random(len(x)), 1.0)
    moves = n_timed * len(x)
    return (time.perf_counter() - w0) / moves, (time.process_time() - c0) / moves, state.n_active


# ---------------------------------------------------------------------------------------------------------------
# (a) the obvious NumPy sampler: sums per component, every predictive rebuilt and factored for every point

def _log_t(x, n, sx, sxx, prior, s0):
    """Log Student-t predictive of every component (n (K,), sx (K, D), sxx (K, D, D)) at x, rebuilt from sums."""
    d = prior.dim
    kappa = prior.kappa0 + n
    df = prior.nu0 + n - d + 1.0
    m = (prior.kappa0 * prior.mu0 + sx) / kappa[:, None]
    s = s0 + sxx + prior.kappa0 * np.outer(prior.mu0, prior.mu0) - kappa[:, None, None] * m[:, :, None] * m[:, None]
    scale = s * ((kappa + 1.0) / (kappa * df))[:, None, None]
    chol = np.linalg.cholesky(scale)
    y = np.linalg.solve(chol, (x - m)[:, :, None])[:, :, 0]
    logdet = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1)
    from scipy.special import gammaln
    return (gammaln((df + d) / 2) - gammaln(df / 2) - d / 2 * np.log(df * math.pi) - logdet
            - (df + d) / 2 * np.log1p((y * y).sum(1) / df))


def plain_numpy_sweep(x, z, n, sx, sxx, alpha, prior, rng, n_points):
    """One (partial) sweep; components are rows of n / sx / sxx, empty ones removed by deleting rows."""
    s0 = prior.chol0 @ prior.chol0.T
    for i in range(n_points):
        xi = x[i]
        k = z[i]
        n[k] -= 1
        sx[k] -= xi
        sxx[k] -= np.outer(xi, xi)
        if n[k] == 0:
            n, sx, sxx = np.delete(n, k), np.delete(sx, k, 0), np.delete(sxx, k, 0)
            z[z > k] -= 1
        nn = np.append(n, 0.0)
        sxn = np.vstack([sx, np.zeros((1, prior.dim))])
        sxxn = np.concatenate([sxx, np.zeros((1, prior.dim, prior.dim))])
        logp = np.log(np.append(n, alpha)) + _log_t(xi, nn, sxn, sxxn, prior, s0)
        p = np.exp(logp - logp.max())
        k = rng.choice(len(p), p=p / p.sum())
        if k == len(n):
            n, sx, sxx = nn, sxn, sxxn
        n[k] += 1
        sx[k] += xi
        sxx[k] += np.outer(xi, xi)
        z[i] = k
    return n, sx, sxx


def time_plain_numpy(x: np.ndarray, labels: np.ndarray, n_points: int):
    """Seconds per point update of the plain sampler, started from ``labels`` (e.g. a warmed-up partition)."""
    prior = make_prior(x)
    rng = np.random.default_rng(1)
    _, z = np.unique(labels, return_inverse=True)
    k = z.max() + 1
    n = np.bincount(z, minlength=k).astype(float)
    sx = np.stack([x[z == j].sum(0) for j in range(k)])
    sxx = np.stack([x[z == j].T @ x[z == j] for j in range(k)])
    w0, c0 = time.perf_counter(), time.process_time()
    n, _, _ = plain_numpy_sweep(x, z, n, sx, sxx, 1.0, prior, rng, n_points)
    return (time.perf_counter() - w0) / n_points, (time.process_time() - c0) / n_points, len(n)


# ---------------------------------------------------------------------------------------------------------------
# (b) scikit-learn's variational DP mixture

def time_sklearn(x: np.ndarray, n_iter: int, truncation: int = 30):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import BayesianGaussianMixture

    model = BayesianGaussianMixture(n_components=truncation, weight_concentration_prior_type="dirichlet_process",
                                    covariance_type="full", max_iter=n_iter, tol=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        w0, c0 = time.perf_counter(), time.process_time()
        model.fit(x)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return wall / n_iter, cpu / n_iter, int((model.weights_ > 0.01).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sweeps and points (about a minute)")
    args = ap.parse_args()
    n, n_clusters = 10_000, 10
    n_warm, n_timed = (2, 1) if args.quick else (5, 5)
    plain_points = 200 if args.quick else 1000
    sk_iter = 3 if args.quick else 10

    print(f"N = {n}, data: {n_clusters} Gaussian clusters; times per point update in microseconds (wall / CPU)")
    print(f"{'D':>3} {'K':>3} | {'replab':>15} {'sweeps/s':>13} | {'plain NumPy':>15} {'K':>3} {'ratio':>6} | "
          f"{'sklearn s/iter':>15} {'K_vb':>4}")
    for d in (16, 32, 64):
        x = mixture_data(n, d, n_clusters)
        ours_w, ours_c, k = time_replab(x, n_warm, n_timed)
        # the baseline starts from the replab partition after warm-up, so both evaluate a similar K
        rng = np.random.default_rng(0)
        warm = GibbsState(x, rng.integers(0, default_init_components(n), n), make_prior(x))
        for _ in range(n_warm):
            warm.sweep(rng.random(n), 1.0)
        base_w, base_c, k_base = time_plain_numpy(x, warm.labels(), plain_points)
        sk_w, sk_c, sk_k = time_sklearn(x, sk_iter)
        print(f"{d:>3} {k:>3} | {ours_w * 1e6:>6.2f} / {ours_c * 1e6:>6.2f} {1 / (ours_w * n):>5.2f} / {1 / (ours_c * n):>5.2f} | "
              f"{base_w * 1e6:>6.1f} / {base_c * 1e6:>6.1f} {k_base:>3} {base_c / ours_c:>5.0f}x | "
              f"{sk_w:>6.3f} / {sk_c:>6.3f} {sk_k:>4}")

    x = mixture_data(2_000, 32, n_clusters)
    tw, tc, tk = time_replab(x, 0, 0, backend="torch", n_points=100)
    print(f"torch back-end on this CPU (D = 32, N = 2,000, K = {tk}): {tw * 1e6:.0f} / {tc * 1e6:.0f} us per point "
          f"update (per-op dispatch; for devices without numba)")

    n_chains = 16
    chains = GibbsChains(x[:500], n_chains=n_chains, seed=0, device="auto")
    chains.sweep()
    w0, c0 = time.perf_counter(), time.process_time()
    chains.sweep()
    if chains.device.type == "cuda":
        torch.cuda.synchronize()
    cw, cc = time.perf_counter() - w0, time.process_time() - c0
    moves = 500 * n_chains
    print(f"GibbsChains on {chains.device.type} (D = 32, N = 500, {n_chains} chains in lockstep, "
          f"K = {int(chains.n_components.float().mean())}): {cw / moves * 1e6:.0f} / {cc / moves * 1e6:.0f} us per "
          f"point update and chain")

    # the paper's largest CNN layer set; the cost of a move grows with K, so time it at two component counts
    # (a random partition into K components keeps about K components over the next sweeps)
    n_big, d_big = 25_600, 81
    x = mixture_data(n_big, d_big, 30)
    prior = make_prior(x)
    rng = np.random.default_rng(0)
    for k in (14, 40):
        state = GibbsState(x, rng.integers(0, k, n_big), prior)
        state.sweep(rng.random(n_big), 1.0)
        w0, c0 = time.perf_counter(), time.process_time()
        state.sweep(rng.random(n_big), 1.0)
        bw, bc = time.perf_counter() - w0, time.process_time() - c0
        print(f"{n_big} x {d_big}, K = {state.n_active}: {bw / n_big * 1e6:.1f} / {bc / n_big * 1e6:.1f} us per point "
              f"update, {bw:.2f} / {bc:.2f} s per sweep; 2,000 sweeps extrapolate to {2000 * bw / 3600:.2f} h wall "
              f"({2000 * bc / 3600:.2f} h CPU)")

if __name__ == "__main__":
    main()
