"""Collapsed Gibbs sweeps for the DP-GMM (Neal 2000, algorithm 3; Jamroż et al. 2020, Section 2).

Each point is removed from its component, the CRP-weighted Student-t predictive of every component (and of a new one)
is evaluated at it, a component is drawn, and the point is added back. Component parameters are integrated out, so
the state is the partition plus per-component sufficient statistics: count, posterior mean and the lower Cholesky
factor of the scatter matrix, kept up to date with rank-one updates and downdates (see :mod:`._niw`).

Two interchangeable back-ends run the same sweep on the same random numbers and give the same partitions:
- ``"numba"`` (CPU): one compiled loop over the points; a move costs O(K D^2) for the K triangular solves plus
  O(D^2) for the two rank-one updates, with no per-point Python overhead.
- ``"torch"`` (any device, CUDA included): the same loop with the K solves batched in one ``solve_triangular``
  call against the stacked factors, and the two touched factors refactored (``cholesky(L L^T +- w w^T)``, a few
  launches) rather than updated column by column. Every step is a tensor op, so it is dominated by dispatch
  latency; it exists so the sampler runs where numba does not, and as a second formulation that the tests
  compare against. Many chains at once on a GPU: :class:`.chains.GibbsChains`.

Categorical draws use one uniform per point and the inverse CDF of the normalised weights (one ``exp`` per
component). Gumbel-max would need K + 1 random numbers per point for the same draw; one uniform keeps both
back-ends on identical random streams.

Slots: components live in fixed-capacity arrays. ``active[:k]`` lists the occupied slots, ``active[k:]`` the free
ones, and ``position`` inverts ``active``; emptying or opening a component is O(1) and no label is ever rewritten.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from ._niw import NIWPrior, log_marginal_from_factors

try:  # numba compiles the per-point loop; without it the same code runs (slowly) as plain Python.
    from numba import njit
    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    HAVE_NUMBA = False

    def njit(*args, **kwargs):
        if args and callable(args[0]):
            return args[0]
        return lambda f: f

__all__ = ["GibbsState", "resample_alpha", "HAVE_NUMBA"]


# ---------------------------------------------------------------------------------------------------------------
# compiled kernel (plain Python loops that numba turns into machine code)

@njit(cache=True, fastmath=True)
def _rank_one(low, w, sign):
    """In place: ``L L^T <- L L^T + sign w w^T`` for a lower factor ``L`` of shape (D, D); ``w`` is destroyed.

    The rotation of column k is folded into two multiply-adds per entry: with ``c = r / L_kk``, ``s = w_k / L_kk``
    and ``c^2 - sign s^2 = 1``, the new ``w_i`` is ``w_i / c - (s / c) L_ik`` (old ``L_ik``).
    """
    d = low.shape[0]
    for k in range(d):
        lkk = low[k, k]
        wk = w[k]
        r = math.sqrt(lkk * lkk + sign * wk * wk)
        ic = lkk / r
        s = wk / lkk
        a = sign * s * ic
        b = s * ic
        low[k, k] = r
        for i in range(k + 1, d):
            wi = w[i]
            li = low[i, k]
            low[i, k] = li * ic + a * wi
            w[i] = wi * ic - b * li


@njit(cache=True, fastmath=True)
def _mahalanobis(low, inv_diag, x, m, y):
    """``||L^{-1} (x - m)||^2`` by forward substitution; each row is a contiguous dot product."""
    d = low.shape[0]
    q = 0.0
    for i in range(d):
        row = low[i]
        acc = x[i] - m[i]
        for j in range(i):
            acc -= row[j] * y[j]
        yi = acc * inv_diag[i]
        y[i] = yi
        q += yi * yi
    return q


@njit(cache=True)
def _refresh(count, low, inv_diag, kappa0, nu0):
    """Inverse diagonal of ``L`` (in place) and the log normaliser of the component's Student-t predictive,
    including ``-1/2 log det`` of its scale matrix."""
    d = low.shape[0]
    kappa = kappa0 + count
    df = nu0 + count - d + 1.0
    logdet = 0.0
    for j in range(d):
        logdet += math.log(low[j, j])
        inv_diag[j] = 1.0 / low[j, j]
    c = (kappa + 1.0) / (kappa * df)
    return (math.lgamma(0.5 * (df + d)) - math.lgamma(0.5 * df) - 0.5 * d * math.log(df * math.pi)
            - 0.5 * d * math.log(c) - logdet)


@njit(cache=True)
def _sweep_kernel(x, z, uniforms, start, alpha, counts, means, chols, inv_diag, log_norm, active, position,
                  n_active, mu0, chol0, kappa0, nu0):
    """Resample the assignment of points ``start, ..., N-1`` in order; return where it stopped.

    It stops early (returning the index of the next point) when every slot is occupied, so the caller can grow
    the arrays and resume: a move opens at most one component.
    """
    n, d = x.shape
    cap = counts.shape[0]
    weights = np.empty(cap + 1)
    w = np.empty(d)
    y = np.empty(d)
    inv0 = np.empty(d)
    log_norm0 = _refresh(0, chol0, inv0, kappa0, nu0)
    half0 = 0.5 * (nu0 - d + 1.0 + d)
    shrink0 = kappa0 / (kappa0 + 1.0)
    log_alpha = math.log(alpha)
    for i in range(start, n):
        if n_active[0] >= cap:
            return i
        xi = x[i]
        s = z[i]
        cnt = counts[s]
        # remove x_i from its component
        if cnt == 1:
            k = n_active[0] - 1
            p = position[s]
            last = active[k]
            active[p] = last
            position[last] = p
            active[k] = s
            position[s] = k
            n_active[0] = k
            counts[s] = 0
        else:
            kappa = kappa0 + cnt
            f = math.sqrt(kappa / (kappa - 1.0))
            for j in range(d):
                w[j] = (xi[j] - means[s, j]) * f
                means[s, j] = (kappa * means[s, j] - xi[j]) / (kappa - 1.0)
            _rank_one(chols[s], w, -1.0)
            counts[s] = cnt - 1
            log_norm[s] = _refresh(cnt - 1, chols[s], inv_diag[s], kappa0, nu0)
        # CRP-weighted predictive of every component and of a new one (the common 1/(N - 1 + alpha) dropped)
        k = n_active[0]
        top = -np.inf
        for j in range(k):
            s = active[j]
            cnt = counts[s]
            kappa = kappa0 + cnt
            half = 0.5 * (nu0 + cnt + 1.0)
            q = _mahalanobis(chols[s], inv_diag[s], xi, means[s], y)
            v = math.log(cnt) + log_norm[s] - half * math.log1p(q * kappa / (kappa + 1.0))
            weights[j] = v
            if v > top:
                top = v
        q = _mahalanobis(chol0, inv0, xi, mu0, y)
        v = log_alpha + log_norm0 - half0 * math.log1p(q * shrink0)
        weights[k] = v
        if v > top:
            top = v
        total = 0.0
        for j in range(k + 1):
            weights[j] = math.exp(weights[j] - top)
            total += weights[j]
        target = uniforms[i] * total
        pick = k
        acc = 0.0
        for j in range(k + 1):
            acc += weights[j]
            if acc > target:
                pick = j
                break
        # add x_i to the chosen component
        if pick == k:
            s = active[k]
            n_active[0] = k + 1
            f = math.sqrt(shrink0)
            for j in range(d):
                w[j] = (xi[j] - mu0[j]) * f
                means[s, j] = (kappa0 * mu0[j] + xi[j]) / (kappa0 + 1.0)
            chols[s, :, :] = chol0
            counts[s] = 1
        else:
            s = active[pick]
            cnt = counts[s]
            kappa = kappa0 + cnt
            f = math.sqrt(kappa / (kappa + 1.0))
            for j in range(d):
                w[j] = (xi[j] - means[s, j]) * f
                means[s, j] = (kappa * means[s, j] + xi[j]) / (kappa + 1.0)
            counts[s] = cnt + 1
        _rank_one(chols[s], w, 1.0)
        log_norm[s] = _refresh(counts[s], chols[s], inv_diag[s], kappa0, nu0)
        z[i] = s
    return n


# ---------------------------------------------------------------------------------------------------------------
# torch back-end: the same moves as tensor ops on any device

def _refactor_rank_one(chol: torch.Tensor, w: torch.Tensor, sign: float) -> torch.Tensor:
    """``cholesky(L L^T + sign w w^T)``: three kernel launches instead of the D steps of ``cholesky_update``,
    which is what counts where every tensor op pays a dispatch (or launch) latency."""
    return torch.linalg.cholesky(chol @ chol.T + sign * torch.outer(w, w))


def _sweep_torch(st: "GibbsState", uniforms: np.ndarray, start: int, alpha: float) -> int:
    dev = st.device
    x = st.x_t
    p = st.prior
    d = p.dim
    kappa0, nu0 = p.kappa0, p.nu0
    chols = torch.as_tensor(st.chols, device=dev)
    means = torch.as_tensor(st.means, device=dev)
    counts = st.counts
    active, position = st.active, st.position
    mu0 = torch.as_tensor(p.mu0, device=dev)
    chol0 = torch.as_tensor(p.chol0, device=dev)
    cap = counts.shape[0]

    def log_norm(cnt, r):
        kappa = kappa0 + cnt
        df = nu0 + cnt - d + 1.0
        c = (kappa + 1.0) / (kappa * df)
        return (math.lgamma(0.5 * (df + d)) - math.lgamma(0.5 * df) - 0.5 * d * math.log(df * math.pi)
                - 0.5 * d * math.log(c) - float(torch.log(torch.diagonal(r)).sum()))

    log_norm0 = log_norm(0, chol0)
    # tensors here are tiny: intra-op threads only add synchronisation (ms per op on a busy 2-core machine)
    n_threads = torch.get_num_threads()
    if dev.type == "cpu":
        torch.set_num_threads(1)
    try:
        for i in range(start, x.shape[0]):
            if st.n_active >= cap:
                return i
            xi = x[i]
            s = int(st.z[i])
            cnt = int(counts[s])
            if cnt == 1:
                k = st.n_active - 1
                q_ = position[s]
                last = active[k]
                active[q_], position[last] = last, q_
                active[k], position[s] = s, k
                st.n_active = k
                counts[s] = 0
            else:
                kappa = kappa0 + cnt
                w = (xi - means[s]) * math.sqrt(kappa / (kappa - 1.0))
                means[s] = (kappa * means[s] - xi) / (kappa - 1.0)
                chols[s] = _refactor_rank_one(chols[s], w, -1.0)
                counts[s] = cnt - 1
                st.log_norm[s] = log_norm(cnt - 1, chols[s])
            k = st.n_active
            slots = torch.as_tensor(active[:k].copy(), device=dev)
            cnt_k = torch.as_tensor(counts[active[:k]], dtype=torch.float64, device=dev)
            diff = torch.cat([xi - means[slots], (xi - mu0).unsqueeze(0)]).unsqueeze(-1)       # (K+1, D, 1)
            factors = torch.cat([chols[slots], chol0.unsqueeze(0)])                              # (K+1, D, D)
            y = torch.linalg.solve_triangular(factors, diff, upper=False)
            q = y.squeeze(-1).pow(2).sum(-1)
            cnt_all = torch.cat([cnt_k, torch.zeros(1, dtype=torch.float64, device=dev)])
            kappa = kappa0 + cnt_all
            prior_w = torch.cat([torch.log(cnt_k), torch.tensor([math.log(alpha)], dtype=torch.float64, device=dev)])
            norms = torch.as_tensor(np.append(st.log_norm[active[:k]], log_norm0), device=dev)
            logw = prior_w + norms - 0.5 * (nu0 + cnt_all + 1.0) * torch.log1p(q * kappa / (kappa + 1.0))
            wts = torch.exp(logw - logw.max()).cpu().numpy()
            # the same scan as the compiled kernel, so both back-ends pick the same component
            csum = np.cumsum(wts)
            hit = np.nonzero(csum > uniforms[i] * csum[-1])[0]
            pick = int(hit[0]) if hit.size else k
            if pick == k:
                s = int(active[k])
                st.n_active = k + 1
                w = (xi - mu0) * math.sqrt(kappa0 / (kappa0 + 1.0))
                means[s] = (kappa0 * mu0 + xi) / (kappa0 + 1.0)
                chols[s] = _refactor_rank_one(chol0, w, 1.0)
                counts[s] = 1
            else:
                s = int(active[pick])
                cnt = int(counts[s])
                kap = kappa0 + cnt
                w = (xi - means[s]) * math.sqrt(kap / (kap + 1.0))
                means[s] = (kap * means[s] + xi) / (kap + 1.0)
                chols[s] = _refactor_rank_one(chols[s], w, 1.0)
                counts[s] = cnt + 1
            st.log_norm[s] = log_norm(int(counts[s]), chols[s])
            st.z[i] = s
        return x.shape[0]
    finally:
        torch.set_num_threads(n_threads)
        st.chols[...] = chols.cpu().numpy()
        st.means[...] = means.cpu().numpy()


# ---------------------------------------------------------------------------------------------------------------

class GibbsState:
    """The collapsed sampler's state: assignments and per-component sufficient statistics in slot arrays.

    Parameters
    ----------
    x : array of shape (N, D), float64.
    z : initial labels of shape (N,), any integers (relabelled to slots here).
    prior : the NIW prior.
    backend : ``"numba"`` or ``"torch"``.
    device : torch device for the torch back-end.
    """

    def __init__(self, x: np.ndarray, z: np.ndarray, prior: NIWPrior, backend: str = "numba",
                 device: torch.device | str = "cpu"):
        self.x = np.ascontiguousarray(x, dtype=np.float64)
        self.prior = prior
        self.backend = backend
        self.device = torch.device(device)
        self.x_t = torch.as_tensor(self.x, device=self.device) if backend == "torch" else None
        _, labels = np.unique(np.asarray(z), return_inverse=True)
        k = int(labels.max()) + 1
        self._allocate(max(2 * k, 8))
        self.z = labels.astype(np.int64)
        self.n_active = k
        self.refactor()

    def _allocate(self, cap: int) -> None:
        d = self.prior.dim
        self.counts = np.zeros(cap, dtype=np.int64)
        self.means = np.zeros((cap, d))
        self.chols = np.zeros((cap, d, d))
        self.inv_diag = np.ones((cap, d))
        self.log_norm = np.zeros(cap)
        self.active = np.arange(cap, dtype=np.int64)
        self.position = np.arange(cap, dtype=np.int64)

    def _grow(self) -> None:
        old = (self.counts, self.means, self.chols, self.inv_diag, self.log_norm, self.active)
        cap = old[0].shape[0]
        self._allocate(2 * cap)
        self.counts[:cap], self.means[:cap], self.chols[:cap], self.inv_diag[:cap], self.log_norm[:cap] = old[:5]
        self.active[:cap] = old[5]            # new slots [cap, 2 cap) are appended to the free list
        self.position[self.active] = np.arange(2 * cap)

    def refactor(self) -> None:
        """Recompute every component's statistics from scratch from the assignments (drops accumulated error)."""
        from ._niw import component_statistics

        slots = np.unique(self.z)
        cap = self.counts.shape[0]
        while cap < len(slots) + 1:
            self._grow()
            cap = self.counts.shape[0]
        p = self.prior
        self.counts[:] = 0
        for s in slots:
            n, m, u = component_statistics(self.x[self.z == s], p)
            self.counts[s], self.means[s], self.chols[s] = n, m, u
        # occupied slots first, free ones after, in slot order
        self.active[:] = np.concatenate([slots, np.setdiff1d(np.arange(cap), slots)])
        self.position[self.active] = np.arange(cap)
        self.n_active = len(slots)
        for s in slots:
            self.log_norm[s] = _refresh(int(self.counts[s]), self.chols[s], self.inv_diag[s], p.kappa0, p.nu0)

    def sweep(self, uniforms: np.ndarray, alpha: float) -> None:
        """One pass over all points in order, consuming ``uniforms`` (shape (N,), in [0, 1))."""
        start, n = 0, self.x.shape[0]
        p = self.prior
        while start < n:
            if self.backend == "torch":
                start = _sweep_torch(self, uniforms, start, alpha)
            else:
                box = np.array([self.n_active], dtype=np.int64)
                start = _sweep_kernel(self.x, self.z, uniforms, start, float(alpha), self.counts, self.means,
                                      self.chols, self.inv_diag, self.log_norm, self.active, self.position,
                                      box, p.mu0,
                                      p.chol0, p.kappa0, p.nu0)
                self.n_active = int(box[0])
            if start < n:
                self._grow()

    # views of the occupied components, in slot order
    @property
    def occupied(self) -> np.ndarray:
        return np.sort(self.active[:self.n_active])

    def labels(self) -> np.ndarray:
        """Assignments relabelled 0..K-1 following slot order, shape (N,)."""
        lookup = np.full(self.counts.shape[0], -1, dtype=np.int64)
        occ = self.occupied
        lookup[occ] = np.arange(len(occ))
        return lookup[self.z]

    def log_likelihood(self) -> float:
        """``log p(X | c)``, the collapsed marginal likelihood of the current partition."""
        occ = self.occupied
        return log_marginal_from_factors(self.counts[occ], self.chols[occ], self.prior)


def resample_alpha_batch(alpha, k, n: int, a: float, b: float, rng: np.random.Generator,
                         legacy: bool = False) -> np.ndarray:
    """One Gibbs update of the DP concentration under a Gamma(a, b) prior (rate b), given K components of N points,
    for one chain or an array of chains (``alpha`` and ``k`` broadcast together).

    Auxiliary variables (Escobar & West 1995, in the form of Teh et al. 2006): ``v ~ Beta(alpha + 1, N)``,
    ``s ~ Bernoulli(N / (N + alpha))``, then ``alpha ~ Gamma(a + K - s, b - log v)``. With ``legacy=True`` the
    shape is the paper code's ``a + K - 1 + s`` (reference notes §1.6 item 1), which is biased upwards.
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    v = rng.beta(alpha + 1.0, n)
    s = (rng.random(alpha.shape) < n / (n + alpha)).astype(np.float64)
    shape = a + k - 1.0 + s if legacy else a + k - s
    return rng.gamma(shape, 1.0 / (b - np.log(v)))


def resample_alpha(alpha: float, k: int, n: int, a: float, b: float, rng: np.random.Generator,
                   legacy: bool = False) -> float:
    """:func:`resample_alpha_batch` for one chain."""
    return float(resample_alpha_batch(alpha, k, n, a, b, rng, legacy))


def warn_if_slow() -> None:
    if not HAVE_NUMBA:
        warnings.warn("numba is not installed: the Gibbs sweeps run as plain Python and are very slow; "
                      "`pip install numba`", RuntimeWarning, stacklevel=3)
