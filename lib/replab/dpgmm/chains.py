"""Many collapsed Gibbs chains at once, in lockstep, as batched tensor ops (for a GPU; Jamroż et al. 2020, Section 2).

The same sampler as :mod:`.gibbs` (Neal 2000, algorithm 3, NIW component parameters integrated out), run for
``C`` independent chains on the same data. Point ``i`` is moved in every chain at the same time: each tensor op
works on a (C, ...) batch, so the per-op dispatch (or kernel-launch) latency that makes the single-chain torch
back-end slow is paid once for all chains.

State per chain, in fixed-capacity slot arrays of shape (C, cap, ...): counts, posterior means and lower
Cholesky factors of the scatter matrices. An empty slot holds the prior's statistics (``mu0``, ``chol(S0)``),
so its Student-t predictive is the prior predictive and the first empty slot of each chain plays the new
component, with weight ``alpha`` instead of ``n_k`` (the common ``1 / (N - 1 + alpha)`` is dropped).

Component draws are Gumbel-max (``argmax(log w + g)``, one Gumbel variate per slot), which needs no
normalisation and no cumulative sum across the batch. The two touched factors are refactored in one batched
``cholesky(L L^T +- w w^T)``, the batched counterpart of the rank-one update. Everything is float64.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch

from .. import runtime
from .._validation import as_tensor_2d, check_finite, check_min_rows
from ._niw import NIWPrior, default_init_components, log_marginal_from_factors, make_prior
from .gibbs import resample_alpha_batch

__all__ = ["GibbsChains", "resample_alpha_batch"]


class GibbsChains:
    """``n_chains`` collapsed Gibbs chains of the DP-GMM on the same data, moved in lockstep.

    Parameters
    ----------
    x : array or tensor of shape (N, D).
    n_chains : number of independent chains C.
    seed : same seed, same chains (initial partitions, Gumbel noise and alpha draws).
    alpha_a, alpha_b : shape and rate of the Gamma prior on alpha; ``fixed_alpha`` holds alpha instead.
    kappa0, nu0, init_components : the NIW prior of :func:`._niw.make_prior` (the paper code's defaults), and
        the initial number of components K0 of each chain's uniformly random initial partition.
    legacy_alpha_update : the paper code's alpha update (see :func:`resample_alpha_batch`).
    device : ``"auto"`` is CUDA when present.
    prior : an explicit :class:`._niw.NIWPrior` instead of the data-driven one.

    Attributes: ``z`` (C, N) slot labels, ``alpha`` (C,) numpy array, ``counts`` (C, cap), ``means``
    (C, cap, D), ``chols`` (C, cap, D, D) tensors on ``device``.
    """

    def __init__(self, x, n_chains: int, seed: int = 0, alpha_a: float = 1.0, alpha_b: float = 1.0,
                 fixed_alpha: float | None = None, kappa0: float = 0.01, nu0: float | None = None,
                 init_components: int | None = None, legacy_alpha_update: bool = False, device="auto",
                 prior: NIWPrior | None = None):
        t = check_finite(as_tensor_2d(x, "x", dtype=torch.float64), "x")
        check_min_rows(t, 2, "x")
        if not isinstance(n_chains, Integral) or isinstance(n_chains, bool) or n_chains < 1:
            raise ValueError(f"n_chains: expected an integer >= 1, got {n_chains!r}")
        if not isinstance(seed, Integral) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
        for name, v in (("alpha_a", alpha_a), ("alpha_b", alpha_b), ("kappa0", kappa0)):
            if not isinstance(v, Real) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name}: expected a positive number, got {v!r}")
        if fixed_alpha is not None and (not isinstance(fixed_alpha, Real) or not fixed_alpha > 0):
            raise ValueError(f"fixed_alpha: expected None or a positive number, got {fixed_alpha!r}")
        n, d = t.shape
        if init_components is not None and (not isinstance(init_components, Integral) or init_components < 1):
            raise ValueError(f"init_components: expected None or an integer >= 1, got {init_components!r}")
        k0 = init_components or default_init_components(n)
        x_np = t.cpu().numpy()
        if prior is None:
            if (x_np.var(0) == 0).any():
                raise ValueError("x: has constant feature(s); the data-driven prior needs a positive variance in "
                                 "every dimension")
            prior = make_prior(x_np, kappa0, nu0, k0)
        if prior.dim != d:
            raise ValueError(f"prior: expected dimension {d}, got {prior.dim}")
        if prior.nu0 <= d - 1:
            raise ValueError(f"nu0: expected a number > D - 1 = {d - 1}, got {prior.nu0!r}")
        self.prior = prior
        self.n_chains = int(n_chains)
        self.alpha_a, self.alpha_b = float(alpha_a), float(alpha_b)
        self.fixed_alpha = fixed_alpha
        self.legacy_alpha_update = bool(legacy_alpha_update)
        self.device = runtime.get_device(device)
        self.x_np = x_np
        self.x = t.to(self.device)
        self.rng = np.random.default_rng(seed)
        self.gen = runtime.generator(seed, self.device)
        dev, f64 = self.device, torch.float64
        self.mu0 = torch.as_tensor(prior.mu0, dtype=f64, device=dev)
        self.chol0 = torch.as_tensor(prior.chol0, dtype=f64, device=dev)
        self.s0 = self.chol0 @ self.chol0.T
        self.log_norm0 = float(self._log_norm(torch.zeros(1, dtype=f64, device=dev), self.chol0[None])[0])
        z = self.rng.integers(0, k0, (self.n_chains, n))
        self.z = torch.as_tensor(z, device=dev)
        if fixed_alpha is not None:
            self.alpha = np.full(self.n_chains, float(fixed_alpha))
        else:
            self.alpha = self.rng.gamma(self.alpha_a, 1.0 / self.alpha_b, self.n_chains)
        self.cap = 0
        self.refactor()

    # -----------------------------------------------------------------------------------------------------------
    def _log_norm(self, counts: torch.Tensor, chols: torch.Tensor) -> torch.Tensor:
        """Log normaliser of each component's Student-t predictive, including ``-1/2 log det`` of its scale."""
        p, d = self.prior, self.prior.dim
        kappa = p.kappa0 + counts
        df = p.nu0 + counts - d + 1.0
        c = (kappa + 1.0) / (kappa * df)
        logdet = torch.log(torch.diagonal(chols, dim1=-2, dim2=-1)).sum(-1)
        return (torch.lgamma(0.5 * (df + d)) - torch.lgamma(0.5 * df) - 0.5 * d * torch.log(df * math.pi)
                - 0.5 * d * torch.log(c) - logdet)

    def _allocate(self, cap: int) -> None:
        c, d, dev = self.n_chains, self.prior.dim, self.device
        self.cap = cap
        self.counts = torch.zeros(c, cap, dtype=torch.float64, device=dev)
        self.means = self.mu0.expand(c, cap, d).clone()
        self.chols = self.chol0.expand(c, cap, d, d).clone()
        self.log_norm = torch.full((c, cap), self.log_norm0, dtype=torch.float64, device=dev)

    def _ensure_room(self, moves: int) -> None:
        """Grow the slot arrays so that ``moves`` more moves (each opens at most one component) fit."""
        need = int(self.n_components.max()) + moves + 1
        if need <= self.cap:
            return
        old = (self.counts, self.means, self.chols, self.log_norm)
        cap = self.cap
        self._allocate(max(2 * cap, need))
        self.counts[:, :cap], self.means[:, :cap], self.chols[:, :cap], self.log_norm[:, :cap] = old

    def refactor(self) -> None:
        """Recompute every chain's component statistics from scratch from ``z`` (drops accumulated round-off)."""
        p, x = self.prior, self.x
        top = int(self.z.max()) + 1
        self._allocate(max(self.cap, 2 * top, 8))
        ar = torch.arange(self.n_chains, device=self.device)
        for s in range(top):
            mask = (self.z == s).to(torch.float64)                        # (C, N)
            n = mask.sum(1)
            sx = mask @ x                                                  # (C, D)
            sxx = torch.einsum("cn,nd,ne->cde", mask, x, x)
            kappa = p.kappa0 + n
            m = (p.kappa0 * self.mu0 + sx) / kappa[:, None]
            scatter = (self.s0 + sxx + p.kappa0 * torch.outer(self.mu0, self.mu0)
                       - kappa[:, None, None] * m[:, :, None] * m[:, None, :])
            occ = n > 0
            scatter = torch.where(occ[:, None, None], scatter, self.s0)
            m = torch.where(occ[:, None], m, self.mu0)
            chol = torch.linalg.cholesky(scatter)
            self.counts[ar, s], self.means[ar, s], self.chols[ar, s] = n, m, chol
            self.log_norm[ar, s] = self._log_norm(n, chol)

    # -----------------------------------------------------------------------------------------------------------
    def sweep(self) -> None:
        """One pass over all points in order in every chain, then one alpha update per chain."""
        # on the CPU the tensors of one move are small: intra-op threads only add synchronisation
        n_threads = torch.get_num_threads()
        if self.device.type == "cpu":
            torch.set_num_threads(1)
        try:
            self._sweep()
        finally:
            torch.set_num_threads(n_threads)

    def _sweep(self) -> None:
        p = self.prior
        kappa0, nu0 = p.kappa0, p.nu0
        x, dev = self.x, self.device
        n = x.shape[0]
        ar = torch.arange(self.n_chains, device=dev)
        slots = torch.arange(self.cap, device=dev)
        log_alpha = torch.as_tensor(np.log(self.alpha), device=dev)
        block = min(8, n)  # check the capacity (one device sync) once per block of moves
        for i in range(n):
            if i % block == 0:
                self._ensure_room(block)
                slots = torch.arange(self.cap, device=dev)
            xi = x[i]
            s = self.z[:, i]
            # remove x_i from its component; a component left empty goes back to the prior's statistics
            cnt = self.counts[ar, s]
            kappa = kappa0 + cnt
            m = self.means[ar, s]
            low = self.chols[ar, s]
            w = (xi - m) * torch.sqrt(kappa / (kappa - 1.0))[:, None]
            left = cnt > 1
            m_new = torch.where(left[:, None], (kappa[:, None] * m - xi) / (kappa - 1.0)[:, None], self.mu0)
            scatter = low @ low.transpose(-1, -2) - w[:, :, None] * w[:, None, :]
            low_new = torch.linalg.cholesky(torch.where(left[:, None, None], scatter, self.s0))
            self.counts[ar, s] = cnt - 1
            self.means[ar, s] = m_new
            self.chols[ar, s] = low_new
            self.log_norm[ar, s] = torch.where(left, self._log_norm(cnt - 1, low_new),
                                               torch.full_like(cnt, self.log_norm0))
            # predictive of every slot; empty slots hold the prior, and the first empty one is the new component
            counts = self.counts
            occupied = counts > 0
            first_empty = torch.argmax((~occupied).to(torch.int8), dim=1)
            diff = (xi - self.means).unsqueeze(-1)                                     # (C, cap, D, 1)
            q = torch.linalg.solve_triangular(self.chols, diff, upper=False).squeeze(-1).pow(2).sum(-1)
            kap = kappa0 + counts
            prior_w = torch.where(occupied, torch.log(counts.clamp_min(1.0)),
                                  torch.where(slots == first_empty[:, None], log_alpha[:, None],
                                              torch.full_like(counts, -math.inf)))
            logw = prior_w + self.log_norm - 0.5 * (nu0 + counts + 1.0) * torch.log1p(q * kap / (kap + 1.0))
            u = torch.rand(logw.shape, generator=self.gen, device=dev, dtype=torch.float64)
            gumbel = -torch.log(-torch.log(u.clamp_min(1e-300)))
            pick = torch.argmax(logw + gumbel, dim=1)
            # add x_i to the chosen component (an empty slot holds mu0 and chol(S0), so one formula serves both)
            cnt = self.counts[ar, pick]
            kappa = kappa0 + cnt
            m = self.means[ar, pick]
            low = self.chols[ar, pick]
            w = (xi - m) * torch.sqrt(kappa / (kappa + 1.0))[:, None]
            low_new = torch.linalg.cholesky(low @ low.transpose(-1, -2) + w[:, :, None] * w[:, None, :])
            self.counts[ar, pick] = cnt + 1
            self.means[ar, pick] = (kappa[:, None] * m + xi) / (kappa + 1.0)[:, None]
            self.chols[ar, pick] = low_new
            self.log_norm[ar, pick] = self._log_norm(cnt + 1, low_new)
            self.z[:, i] = pick
        if self.fixed_alpha is None:
            self.alpha = resample_alpha_batch(self.alpha, self.n_components.cpu().numpy(), n, self.alpha_a,
                                              self.alpha_b, self.rng, legacy=self.legacy_alpha_update)

    # -----------------------------------------------------------------------------------------------------------
    @property
    def n_components(self) -> torch.Tensor:
        """Number of occupied components in each chain, shape (C,)."""
        return (self.counts > 0).sum(1)

    def labels(self) -> torch.Tensor:
        """Assignments relabelled 0..K_c-1 in slot order within each chain, shape (C, N), on the CPU."""
        occupied = (self.counts > 0).cpu()
        rank = torch.cumsum(occupied.long(), 1) - 1
        return torch.gather(rank, 1, self.z.cpu())

    def log_likelihood(self) -> np.ndarray:
        """``log p(X | c)`` of each chain's partition, shape (C,)."""
        counts, chols = self.counts.cpu().numpy(), self.chols.cpu().numpy()
        out = np.empty(self.n_chains)
        for c in range(self.n_chains):
            occ = counts[c] > 0
            out[c] = log_marginal_from_factors(counts[c, occ], chols[c, occ], self.prior)
        return out
