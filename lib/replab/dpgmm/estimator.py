"""``DPGMM``: a Dirichlet-process Gaussian mixture fitted by exact collapsed Gibbs sampling.

The model of Jamroż et al. (2020), Eqs. 3-5: ``alpha ~ Gamma(a, b)``, ``G ~ DP(NIW(theta0), alpha)``, Gaussian
observations, with the paper code's data-driven NIW prior (reference notes §1.4). The posterior predictive of Eq. 6
is a mixture of multivariate Student-t over the kept sweeps (:meth:`DPGMM.predictive`).
Used by the book page ``jamroz2020``.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch

from .. import runtime
from .._validation import as_tensor_2d, check_finite, check_min_rows
from ..distributions import MultivariateStudentT, sample_student_t_mixture
from ._niw import default_init_components, make_prior, predictive_df, predictive_scale_factor
from .gibbs import HAVE_NUMBA, GibbsState, resample_alpha, warn_if_slow

__all__ = ["DPGMM"]


def _is_int(v, low):
    return isinstance(v, Integral) and not isinstance(v, bool) and v >= low


def _is_pos(v):
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0


# name -> (check, what was expected); checked at fit, one message form
_PARAMETER_CONSTRAINTS = {
    "n_sweeps": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "burn_in": (lambda v: _is_int(v, 0), "an integer >= 0"),
    "thin": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "seed": (lambda v: _is_int(v, 0), "a non-negative integer"),
    "alpha_a": (_is_pos, "a positive number"),
    "alpha_b": (_is_pos, "a positive number"),
    "fixed_alpha": (lambda v: v is None or _is_pos(v), "None or a positive number"),
    "kappa0": (_is_pos, "a positive number"),
    "nu0": (lambda v: v is None or (isinstance(v, Real) and math.isfinite(v)), "None or a number > D - 1"),
    "init_components": (lambda v: v is None or _is_int(v, 1), "None or an integer >= 1"),
    "legacy_alpha_update": (lambda v: isinstance(v, bool), "True or False"),
    "predictive_weights": (lambda v: v in ("crp", "alpha_plus_n"), "'crp' or 'alpha_plus_n'"),
    "backend": (lambda v: v in ("auto", "numba", "torch"), "'auto', 'numba' or 'torch'"),
    "refactor_every": (lambda v: _is_int(v, 1), "an integer >= 1"),
}


class DPGMM:
    """Dirichlet-process Gaussian mixture with a Normal-inverse-Wishart base measure, by collapsed Gibbs sampling.

    Parameters
    ----------
    n_sweeps, burn_in, thin : the chain runs ``n_sweeps`` sweeps over all points and keeps sweeps
        ``burn_in + thin, burn_in + 2 thin, ...`` (the paper: 2,000, 1,000 and 20, so 50 kept sweeps).
    seed : same seed, same chain.
    alpha_a, alpha_b : shape and rate of the Gamma prior on the concentration alpha (the paper: 1 and 1).
    fixed_alpha : if given, alpha is held at this value instead of being resampled.
    kappa0, nu0 : NIW prior strength; ``nu0=None`` means D + 2, so the prior predictive has 3 degrees of freedom.
    init_components : initial number of components K0 (uniformly random initial assignment); ``None`` means
        ``int(log2(1 + N))``. K0 also scales the prior scatter ``S0 = diag(var) / K0^(2/D)``.
    legacy_alpha_update : use the paper code's auxiliary-variable update of alpha, whose Gamma shape is
        ``a + K - 1 + s`` instead of ``a + K - s`` (reference notes §1.6 item 1).
    predictive_weights : ``"crp"`` (default): component k has weight ``n_k / (N + alpha)`` and the prior
        predictive ``alpha / (N + alpha)``; ``"alpha_plus_n"``: weights proportional to ``alpha + n_k`` over the
        existing components only, as the paper code (§1.6 item 3).
    backend : ``"numba"`` (compiled CPU loop), ``"torch"`` (tensor ops on ``device``), or ``"auto"``: numba
        when installed (even with a GPU: one chain's moves are sequential and latency bound), torch otherwise.
        To run many chains at once on a GPU, use :class:`replab.dpgmm.GibbsChains`.
    device : where the torch back-end and the predictive live; ``"auto"`` is CUDA when present.
    refactor_every : recompute all component statistics from scratch every this many sweeps, which bounds the
        round-off that rank-one updates accumulate.

    Alpha is resampled once per sweep, after the assignments. The paper code resamples it after every point move;
    both leave the same posterior invariant (alpha's conditional depends on the partition only through K and N),
    and between consecutive moves K changes by at most one, so per-point updates buy little mixing for N draws
    from three distributions per sweep, and they would break the shared random stream of the two back-ends.

    Attributes (after fit)
    ----------------------
    prior_ : the NIW prior (``NIWPrior``).
    data_mean_, data_var_ : tensors of shape (D,): the data mean and maximum-likelihood variances.
    alpha_trace_, n_components_trace_, log_likelihood_trace_ : tensors of shape (n_sweeps,), one value per sweep;
        the log-likelihood is ``log p(X | c)``, the collapsed marginal likelihood of the partition.
    kept_sweeps_ : tensor (T,) of the 1-based sweep numbers kept after burn-in and thinning.
    assignments_ : tensor (T, N) of component labels 0..K_t-1 in each kept sweep.
    alpha_, log_likelihood_, n_components_ : tensors (T,) at the kept sweeps.
    counts_, means_, cholesky_ : lists of T tensors of shapes (K_t,), (K_t, D), (K_t, D, D): each component's
        count, posterior mean ``m_k`` and lower Cholesky factor of its posterior scatter ``S_k`` (Eq. 5).
    """

    def __init__(self, n_sweeps: int = 2000, burn_in: int = 1000, thin: int = 20, seed: int = 0,
                 alpha_a: float = 1.0, alpha_b: float = 1.0, fixed_alpha: float | None = None,
                 kappa0: float = 0.01, nu0: float | None = None, init_components: int | None = None,
                 legacy_alpha_update: bool = False, predictive_weights: str = "crp", backend: str = "auto",
                 device: str | torch.device = "auto", refactor_every: int = 100):
        self.n_sweeps = n_sweeps
        self.burn_in = burn_in
        self.thin = thin
        self.seed = seed
        self.alpha_a = alpha_a
        self.alpha_b = alpha_b
        self.fixed_alpha = fixed_alpha
        self.kappa0 = kappa0
        self.nu0 = nu0
        self.init_components = init_components
        self.legacy_alpha_update = legacy_alpha_update
        self.predictive_weights = predictive_weights
        self.backend = backend
        self.device = device
        self.refactor_every = refactor_every

    # -----------------------------------------------------------------------------------------------------------
    def _check_params(self, d: int) -> None:
        for name, (ok, expected) in _PARAMETER_CONSTRAINTS.items():
            value = getattr(self, name)
            if not ok(value):
                raise ValueError(f"{name}: expected {expected}, got {value!r}")
        if self.burn_in >= self.n_sweeps:
            raise ValueError(f"burn_in: expected fewer than n_sweeps={self.n_sweeps} sweeps, got {self.burn_in}")
        if (self.n_sweeps - self.burn_in) // self.thin < 1:
            raise ValueError(f"thin: expected at most n_sweeps - burn_in = {self.n_sweeps - self.burn_in} so that "
                             f"a sweep is kept, got {self.thin}")
        if self.nu0 is not None and self.nu0 <= d - 1:
            raise ValueError(f"nu0: expected a number > D - 1 = {d - 1}, got {self.nu0!r}")

    @staticmethod
    def _check_data(x) -> np.ndarray:
        t = check_finite(as_tensor_2d(x, "X", dtype=torch.float64), "X")
        check_min_rows(t, 2, "X")
        n, d = t.shape
        if n <= d:
            raise ValueError(f"X: has {d} features but only {n} examples; the DP-GMM needs more examples than "
                             f"features (N > D) to support a full covariance")
        const = torch.nonzero(t.var(0) == 0).flatten().tolist()
        if const:
            raise ValueError(f"X: feature(s) {const[:10]} are constant; the data-driven prior needs a positive "
                             f"variance in every dimension (drop them first)")
        return t.cpu().numpy()

    def fit(self, X) -> "DPGMM":
        """Run the collapsed Gibbs sampler on ``X`` of shape (n_samples, n_features) and keep the traces."""
        x = self._check_data(X)
        n, d = x.shape
        self._check_params(d)
        self.device_ = runtime.get_device(self.device)
        backend = self.backend
        if backend == "auto":
            # the single-chain sweep is latency bound: the compiled CPU loop beats per-point kernel launches on a
            # GPU by far, so the device only decides where the predictive lives (GibbsChains runs chains there)
            backend = "numba" if HAVE_NUMBA else "torch"
        if backend == "numba":
            warn_if_slow()
        self.backend_ = backend
        rng = np.random.default_rng(self.seed)
        k0 = self.init_components or default_init_components(n)
        prior = make_prior(x, self.kappa0, self.nu0, k0)
        state = GibbsState(x, rng.integers(0, k0, n), prior, backend=backend,
                           device=self.device_ if backend == "torch" else "cpu")
        if self.fixed_alpha is not None:
            alpha = float(self.fixed_alpha)
        else:
            alpha = float(rng.gamma(self.alpha_a, 1.0 / self.alpha_b))

        alphas, ks, lls = [], [], []
        kept, z_kept, counts, means, chols = [], [], [], [], []
        for sweep in runtime.progress(range(1, self.n_sweeps + 1), desc="DP-GMM sweeps"):
            state.sweep(rng.random(n), alpha)
            if sweep % self.refactor_every == 0:
                state.refactor()
            if self.fixed_alpha is None:
                alpha = resample_alpha(alpha, state.n_active, n, self.alpha_a, self.alpha_b, rng,
                                       legacy=self.legacy_alpha_update)
            alphas.append(alpha)
            ks.append(state.n_active)
            lls.append(state.log_likelihood())
            if sweep > self.burn_in and (sweep - self.burn_in) % self.thin == 0:
                occ = state.occupied
                kept.append(sweep)
                z_kept.append(state.labels())
                counts.append(torch.as_tensor(state.counts[occ].copy()))
                means.append(torch.as_tensor(state.means[occ].copy()))
                chols.append(torch.as_tensor(state.chols[occ].copy()))

        self.prior_ = prior
        self.n_features_in_ = d
        self.n_samples_fit_ = n
        self.data_mean_ = torch.as_tensor(x.mean(0))
        self.data_var_ = torch.as_tensor(x.var(0))
        self.alpha_trace_ = torch.tensor(alphas, dtype=torch.float64)
        self.n_components_trace_ = torch.tensor(ks)
        self.log_likelihood_trace_ = torch.tensor(lls, dtype=torch.float64)
        idx = torch.tensor(kept, dtype=torch.long)
        self.kept_sweeps_ = idx
        self.assignments_ = torch.as_tensor(np.stack(z_kept)) if z_kept else torch.empty(0, n, dtype=torch.long)
        self.alpha_ = self.alpha_trace_[idx - 1]
        self.log_likelihood_ = self.log_likelihood_trace_[idx - 1]
        self.n_components_ = self.n_components_trace_[idx - 1]
        self.counts_, self.means_, self.cholesky_ = counts, means, chols
        return self

    # -----------------------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "kept_sweeps_"):
            raise ValueError("this DPGMM is not fitted yet: call fit(X) first")

    @property
    def n_traces_(self) -> int:
        self._check_fitted()
        return len(self.counts_)

    def _mixture_parts(self, t: int):
        """Weights (K',), df (K',), loc (K', D), scale_tril (K', D, D) of the predictive given kept sweep ``t``."""
        p = self.prior_
        cnt = self.counts_[t].to(torch.float64)
        alpha = float(self.alpha_[t])
        df = torch.as_tensor(predictive_df(cnt.numpy(), p))
        scale = torch.as_tensor(predictive_scale_factor(cnt.numpy(), p))
        tril = self.cholesky_[t] * scale[:, None, None]
        loc = self.means_[t]
        if self.predictive_weights == "alpha_plus_n":
            return alpha + cnt, df, loc, tril
        # CRP: an extra component for a new cluster, with the prior predictive
        df0 = torch.tensor([float(predictive_df(0.0, p))], dtype=torch.float64)
        tril0 = torch.as_tensor(p.chol0) * float(predictive_scale_factor(0.0, p))
        return (torch.cat([cnt, torch.tensor([alpha], dtype=torch.float64)]), torch.cat([df, df0]),
                torch.cat([loc, torch.as_tensor(p.mu0)[None]]), torch.cat([tril, tril0[None]]))

    def predictive(self, trace_index: int | None = None, device=None) -> torch.distributions.MixtureSameFamily:
        """The posterior predictive as a ``MixtureSameFamily`` of :class:`MultivariateStudentT`.

        ``trace_index=t`` gives ``p(x* | D, c_t)`` for kept sweep ``t``; ``None`` gives Eq. 6, the average over
        all kept sweeps (one mixture whose weights are each sweep's weights divided by T).
        """
        self._check_fitted()
        dev = runtime.get_device(self.device if device is None else device)
        if trace_index is None:
            idx = range(self.n_traces_)
        else:
            if not isinstance(trace_index, Integral) or not -self.n_traces_ <= trace_index < self.n_traces_:
                raise ValueError(f"trace_index: expected an integer in [0, {self.n_traces_}), got {trace_index!r}")
            idx = [int(trace_index) % self.n_traces_]
        parts = [self._mixture_parts(t) for t in idx]
        w = torch.cat([pw / pw.sum() for pw, *_ in parts]) / len(parts)
        df, loc, tril = (torch.cat([pp[i] for pp in parts]).to(dev) for i in (1, 2, 3))
        return torch.distributions.MixtureSameFamily(torch.distributions.Categorical(probs=w.to(dev)),
                                                     MultivariateStudentT(df, loc, tril))

    def score_samples(self, X, batch_size: int = 4096) -> torch.Tensor:
        """``log p(x | D)`` (Eq. 6) for each row of ``X`` (n, D); returns a float64 tensor of shape (n,)."""
        self._check_fitted()
        x = check_finite(as_tensor_2d(X, "X", dtype=torch.float64), "X")
        if x.shape[1] != self.n_features_in_:
            raise ValueError(f"X: expected {self.n_features_in_} features, got {x.shape[1]}")
        dist = self.predictive()
        x = x.to(dist.mixture_distribution.probs.device)
        return torch.cat([dist.log_prob(b) for b in x.split(batch_size)]).cpu()

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` draws from the posterior predictive (Eq. 6), shape (n, D), float64 on the CPU."""
        self._check_fitted()
        if not _is_int(n, 1):
            raise ValueError(f"n: expected an integer >= 1, got {n!r}")
        dist = self.predictive()
        dev = dist.mixture_distribution.probs.device
        devices = [dev] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            comp = dist.component_distribution
            x = sample_student_t_mixture(dist.mixture_distribution.probs, comp.df, comp.loc, comp.scale_tril, n)
            return x[torch.randperm(n, device=x.device)].cpu()
