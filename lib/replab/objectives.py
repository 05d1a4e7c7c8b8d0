"""VAE objectives as functions of the model's outputs, each citing the paper's equation.

The building blocks are pure tensor functions: ``log_px`` is the per-example reconstruction log-likelihood
log p(x|z) of shape (B,), ``mu`` and ``logvar`` the posterior parameters (B, d), ``z`` a reparameterised sample
(B, d). Each objective returns a dict of tensors: ``"loss"`` (a scalar to minimise, averaged over the batch) and
its terms (``"reconstruction"`` = batch mean of −log p(x|z), ``"kl"``, ...), so the training engine can log them.

:data:`OBJECTIVES` maps the names the training configuration uses to ``fn(model, x, step, generator, **params)``.
"""
from __future__ import annotations

import math
import numbers
from typing import Callable

import torch
from torch import distributions as D
from torch.nn import functional as F

from . import noise as _noise
from ._validation import Rule
from .models.vae import diagonal_gaussian_log_density

__all__ = ["kl_diagonal_gaussian", "beta_vae", "total_correlation", "beta_tc_vae", "annealed_vae",
           "capacity", "dip_vae_ii_penalty", "dip_vae_ii", "imq_kernel", "mmd", "mmd_vae", "log_importance_weights",
           "renyi_bound", "legacy_argo_renyi_bound", "renyi_vae", "importance_log_likelihood", "reconstruction_loss",
           "cross_entropy",
           "binary_cross_entropy",
           "OBJECTIVES", "objective"]


def _check_params(name: str, **checks) -> None:
    for key, (value, ok, expected) in checks.items():
        if not ok(value):
            raise ValueError(f"{name}: {key} must be {expected}, got {value!r}")


def kl_diagonal_gaussian(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) per example = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1) (Kingma & Welling 2014,
    App. B); shape (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).sum(-1)


def beta_vae(log_px: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0) -> dict:
    """β-VAE loss, the negative of Higgins et al. (2017) Eq. 4: E[−log p(x|z)] + β·KL(q(z|x) ‖ p(z)).

    β = 1 is the negative ELBO of Kingma & Welling (2014), Eq. 3.
    """
    kl = kl_diagonal_gaussian(mu, logvar).mean()
    rec = -log_px.mean()
    return {"loss": rec + beta * kl, "reconstruction": rec, "kl": kl}


def total_correlation(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int | None = None,
                      drop_constants: bool = False) -> torch.Tensor:
    """Minibatch-weighted-sampling (MWS) estimate of TC = KL(q(z) ‖ Π_j q(z_j)) (Chen et al. 2018, the MWS
    estimator of the β-TCVAE paper).

    log q(z_i) ≈ LSE_k log q(z_i | x_k) − log(NM) and log q(z_ij) ≈ LSE_k log q(z_ij | x_k) − log(NM), with M the
    batch size and N = ``dataset_size``. With ``dataset_size=None`` the normaliser is M alone: q is the mixture of
    the batch's posteriors (the aggregate posterior of the minibatch), which is what the Gaussian closed form
    −½ log det(correlation) is checked against. ``drop_constants=True`` is disentanglement_lib's variant: the
    −log(NM) terms are left out, which offsets the estimate by −(d − 1)·log(NM) (it can be negative) and leaves
    its gradients unchanged.
    """
    if z.ndim != 2 or z.shape != mu.shape or mu.shape != logvar.shape:
        raise ValueError(f"z, mu and logvar must share a shape (batch, d), got {tuple(z.shape)}, "
                         f"{tuple(mu.shape)}, {tuple(logvar.shape)}")
    m, d = z.shape
    # log q(z_i,j | x_k) for every pair (i, k) and dimension j: (M, M, d)
    log_qz_pairs = diagonal_gaussian_log_density(z[:, None, :], mu[None, :, :], logvar[None, :, :])
    log_qz = torch.logsumexp(log_qz_pairs.sum(-1), dim=1)               # (M,)
    log_prod_qz = torch.logsumexp(log_qz_pairs, dim=1).sum(-1)           # (M,)
    tc = (log_qz - log_prod_qz).mean()
    if not drop_constants:
        log_norm = math.log(m) if dataset_size is None else math.log(dataset_size * m)
        tc = tc + (d - 1) * log_norm
    return tc


def beta_tc_vae(log_px: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor, beta: float = 1.0,
                dataset_size: int | None = None, drop_constants: bool = False) -> dict:
    """β-TC-VAE loss as disentanglement_lib writes it: −log p(x|z) + KL + (β − 1)·TC (Chen et al. 2018, Eq. 4
    with α = γ = 1), the TC from :func:`total_correlation`. At β = 1 it is exactly the VAE loss."""
    base = beta_vae(log_px, mu, logvar, 1.0)
    tc = total_correlation(z, mu, logvar, dataset_size, drop_constants)
    return {**base, "loss": base["loss"] + (beta - 1.0) * tc, "tc": tc}


def capacity(step: int, c_max: float, iteration_threshold: int) -> float:
    """The linear capacity schedule C(t) = min(C_max, C_max·t / threshold) of Burgess et al. (2018), §5."""
    return min(float(c_max), float(c_max) * step / iteration_threshold)


def annealed_vae(log_px: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, step: int, gamma: float = 1000.0,
                 c_max: float = 25.0, iteration_threshold: int = 100_000) -> dict:
    """Annealed (capacity-controlled) VAE loss, Burgess et al. (2018) Eq. 8: E[−log p(x|z)] + γ·|KL − C(t)|,
    with the batch-mean KL and the step-based schedule of disentanglement_lib (t = optimiser step)."""
    _check_params("annealed_vae", iteration_threshold=(iteration_threshold, lambda v: v > 0, "positive"),
                  step=(step, lambda v: v >= 0, "non-negative"))
    kl = kl_diagonal_gaussian(mu, logvar).mean()
    rec = -log_px.mean()
    c = capacity(step, c_max, iteration_threshold)
    return {"loss": rec + gamma * (kl - c).abs(), "reconstruction": rec, "kl": kl,
            "capacity": torch.tensor(c, device=kl.device)}


def dip_vae_ii_penalty(mu: torch.Tensor, logvar: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """DIP-VAE-II regulariser (Kumar et al. 2018, §3, with Cov_q(z) = E[Σ(x)] + Cov[μ(x)]):
    λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)², where C = Cov_batch(μ) + mean_batch(diag σ²).

    The batch covariance of the means uses 1/M, as disentanglement_lib does."""
    centred = mu - mu.mean(0, keepdim=True)
    cov = centred.T @ centred / mu.shape[0] + torch.diag(logvar.exp().mean(0))
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return lambda_od * off.pow(2).sum() + lambda_d * (diag - 1.0).pow(2).sum()


def dip_vae_ii(log_px: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, lambda_od: float = 1.0,
               lambda_d: float | None = None) -> dict:
    """DIP-VAE-II loss: the VAE loss plus :func:`dip_vae_ii_penalty`; λ_d defaults to λ_od
    (disentanglement_lib's ``lambda_d_factor = 1`` for DIP-II)."""
    lambda_d = lambda_od if lambda_d is None else lambda_d
    base = beta_vae(log_px, mu, logvar, 1.0)
    pen = dip_vae_ii_penalty(mu, logvar, lambda_od, lambda_d)
    return {**base, "loss": base["loss"] + pen, "dip_penalty": pen}


def imq_kernel(x: torch.Tensor, y: torch.Tensor, scale: float) -> torch.Tensor:
    """Inverse multiquadratic kernel k(x, y) = C / (C + ‖x − y‖²) between rows of x and y, shape (n, m)."""
    # ‖x‖² + ‖y‖² − 2x·y: no square root, so the gradient stays finite where x = y (cdist's is not)
    sq = x.pow(2).sum(-1)[:, None] + y.pow(2).sum(-1)[None, :] - 2.0 * x @ y.T
    return scale / (scale + sq.clamp_min(0.0))


def mmd(x: torch.Tensor, y: torch.Tensor, scale: float, unbiased: bool = False) -> torch.Tensor:
    """Squared MMD with the IMQ kernel (Tolstikhin et al. 2018, Algorithm 2 and §4).

    ``unbiased=False`` is the V-statistic mean(Kxx) + mean(Kyy) − 2·mean(Kxy), diagonals included (Jamroż et
    al.'s code); ``unbiased=True`` the U-statistic that leaves the diagonals of Kxx and Kyy out (the WAE code).
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be matrices with the same number of columns, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    kxx, kyy, kxy = imq_kernel(x, x, scale), imq_kernel(y, y, scale), imq_kernel(x, y, scale)
    if not unbiased:
        return kxx.mean() + kyy.mean() - 2 * kxy.mean()
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError("the unbiased MMD needs at least 2 rows in x and in y")
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return sxx + syy - 2 * kxy.mean()


def mmd_vae(log_px: torch.Tensor, z: torch.Tensor, beta: float = 1.0, prior_variance: float = 2.0,
            unbiased: bool = False, generator: torch.Generator | None = None) -> dict:
    """MMD-VAE (InfoVAE of Zhao et al. 2019 with the MMD divergence; WAE-MMD of Tolstikhin et al. 2018,
    Algorithm 2): E[−log p(x|z)] +
    β·MMD(q(z), p(z)) with p(z) = N(0, σ²I) and the IMQ kernel scale C = 2·d·σ² (Jamroż et al.: σ² = 2)."""
    _check_params("mmd_vae", prior_variance=(prior_variance, lambda v: v > 0, "positive"))
    prior = _noise.randn(z.shape, generator, device=z.device, dtype=z.dtype) * math.sqrt(prior_variance)
    scale = 2.0 * z.shape[1] * prior_variance
    dist = mmd(z, prior, scale, unbiased)
    rec = -log_px.mean()
    return {"loss": rec + beta * dist, "reconstruction": rec, "mmd": dist}


def log_importance_weights(model, x: torch.Tensor, n_samples: int, generator: torch.Generator | None = None,
                           posterior: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """log w_k = log p(x | z_k) + log p(z_k) − log q(z_k | x) for K = ``n_samples`` draws z_k ~ q(z|x);
    shape (K, B). ``model`` needs ``encode``, ``decode`` and ``log_likelihood`` (any :class:`~replab.models.VAE`).
    """
    mu, logvar = model.encode(x) if posterior is None else posterior
    q = D.Normal(mu, torch.exp(0.5 * logvar))
    eps = _noise.randn((n_samples, *mu.shape), generator, device=mu.device, dtype=mu.dtype)
    z = mu + q.scale * eps
    log_qz = q.log_prob(z).sum(-1)
    log_pz = D.Normal(torch.zeros_like(mu), torch.ones_like(mu)).log_prob(z).sum(-1)
    log_px = model.log_likelihood(model.decode(z), x)
    return log_px + log_pz - log_qz


def renyi_bound(log_w: torch.Tensor, alpha: float) -> torch.Tensor:
    """The K-sample Monte Carlo estimate of the variational Rényi (VR) bound of Li & Turner (2016), per example:
    L_α = 1/(1 − α) · log((1/K) Σ_k w_k^{1−α}), from log-weights of shape (K, B).

    α → 1 is the ELBO (the mean of the log-weights, used at α = 1 exactly); α = 0 the IWAE bound of Burda et al.
    (2016), Eq. 8; α < 0 gives values above the IWAE bound.

    With a = 1 − α and r the largest (a > 0) or smallest (a < 0) log-weight of each column, L_α = r + log m / a
    where m = mean_k exp(a·(log w_k − r)) lies in [1/K, 1]. Near α = 1, m is 1 minus a tiny number and log m is
    taken as log1p(mean expm1(·)), so the division by a small a does not amplify rounding (in float32,
    logsumexp − log K loses about 0.3 nats at α = 1 − 10⁻⁶); elsewhere log m is the plain log-mean-exp.
    """
    if log_w.ndim != 2:
        raise ValueError(f"log_w must have shape (n_samples, batch), got {tuple(log_w.shape)}")
    if isinstance(alpha, torch.Tensor):
        return _renyi_bound_of_tensor(log_w, alpha)
    if not (isinstance(alpha, numbers.Real) and math.isfinite(alpha)):
        raise ValueError(f"alpha must be a finite number, got {alpha!r}")
    if alpha == 1:
        return log_w.mean(0)
    a = 1.0 - alpha
    ref = log_w.max(0).values if a > 0 else log_w.min(0).values
    t = a * (log_w - ref)  # <= 0
    mean_exp = t.exp().mean(0)
    log_mean = torch.where(mean_exp < 0.5, mean_exp.log(), torch.log1p(t.expm1().mean(0)))
    return ref + log_mean / a


def _renyi_bound_of_tensor(log_w: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """:func:`renyi_bound` for α given as a 0-d tensor (one value per member of a stacked group under
    ``torch.func.vmap``): the same branches, chosen by ``torch.where`` instead of Python control flow. The branch
    not taken is fed finite values, so its gradient is zero rather than NaN."""
    a = 1.0 - alpha
    one = a == 0
    a_safe = torch.where(one, torch.ones_like(a), a)
    ref = torch.where(a > 0, log_w.max(0).values, log_w.min(0).values)
    t = torch.where(one, torch.zeros_like(log_w), a_safe * (log_w - ref))
    mean_exp = t.exp().mean(0)
    log_mean = torch.where(mean_exp < 0.5, mean_exp.log(), torch.log1p(t.expm1().mean(0)))
    return torch.where(one, log_w.mean(0), ref + log_mean / a_safe)


def legacy_argo_renyi_bound(log_w: torch.Tensor, alpha: float) -> torch.Tensor:
    """The quantity the public code of Peşte et al. optimises as its Rényi bound (argo ``RenyiBound.compute``):
    LSE over the whole (K, B) tensor of (1 − α)·log w, divided by 1 − α, one scalar for the batch.

    It is not the VR bound: it reduces over the examples as well as the samples and omits −log K, so for equal
    log-weights c it gives c + log(K·B)/(1 − α) instead of c. Offered only to reproduce that code.
    """
    if log_w.ndim != 2:
        raise ValueError(f"log_w must have shape (n_samples, batch), got {tuple(log_w.shape)}")
    if not isinstance(alpha, torch.Tensor) and (not (isinstance(alpha, numbers.Real) and math.isfinite(alpha))
                                                or alpha == 1):
        raise ValueError(f"alpha must be a finite number other than 1 for the legacy reduction, got {alpha!r}")
    a = 1.0 - alpha
    return torch.logsumexp((a * log_w).reshape(-1), dim=0) / a


def renyi_vae(model, x: torch.Tensor, alpha: float = 1.0, n_samples: int = 1,
              generator: torch.Generator | None = None, legacy_argo_reduction: bool = False) -> dict:
    """The negative VR bound of Li & Turner (2016) averaged over the batch, with K = ``n_samples``.

    ``legacy_argo_reduction=True`` optimises :func:`legacy_argo_renyi_bound` instead (the public code's
    whole-tensor reduction, divided by the batch size so the loss keeps a per-example scale).
    """
    _check_params("renyi_vae", n_samples=(n_samples, lambda v: isinstance(v, int) and v > 0, "a positive integer"))
    mu, logvar = model.encode(x)
    log_w = log_importance_weights(model, x, n_samples, generator, posterior=(mu, logvar))
    if legacy_argo_reduction:
        bound = legacy_argo_renyi_bound(log_w, alpha) / x.shape[0]
    else:
        bound = renyi_bound(log_w, alpha).mean()
    return {"loss": -bound, "bound": bound, "kl": kl_diagonal_gaussian(mu, logvar).mean().detach()}


@torch.no_grad()
def importance_log_likelihood(model, x: torch.Tensor, n_samples: int = 2000, chunk: int | None = None,
                              generator: torch.Generator | None = None) -> torch.Tensor:
    """Importance-sampled log p(x) ≈ LSE_k log w_k − log K with q(z|x) as proposal (Burda et al. 2016, Eq. 8 at
    K = ``n_samples``, as Peşte et al. use with K = 2000), per example, shape (B,).

    The K samples are drawn ``chunk`` at a time and combined with a running log-sum-exp, so memory grows with
    ``chunk``·B, not K·B. The default chunk keeps each decoded block near 2²⁴ values (64 MB in float32).
    """
    if chunk is None:
        chunk = max(1, min(n_samples, 2**24 // max(1, x.shape[0] * x[0].numel())))
    for name, v in (("n_samples", n_samples), ("chunk", chunk)):
        if not (isinstance(v, int) and v > 0):
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    posterior = model.encode(x)
    total = torch.full((x.shape[0],), -math.inf, device=x.device, dtype=posterior[0].dtype)
    done = 0
    while done < n_samples:
        k = min(chunk, n_samples - done)
        log_w = log_importance_weights(model, x, k, generator, posterior=posterior)
        total = torch.logaddexp(total, torch.logsumexp(log_w, dim=0))
        done += k
    return total - math.log(n_samples)


@torch.no_grad()
def reconstruction_loss(model, x: torch.Tensor, batch_size: int = 250) -> float:
    """The mean over the rows of ``x`` of −log p(x | z = E[z | x]): the decoder's likelihood of each input at its
    posterior mean (for a Bernoulli decoder the cross-entropy summed over pixels), in nats per example; batches
    of ``batch_size`` run on the model's device."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if x.shape[0] == 0:
        raise ValueError("x has no rows")
    dev = next(model.parameters()).device
    total = 0.0
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size].to(dev)
        total += float(-model.log_likelihood(model.decode(model.encode(xb)[0]), xb).sum())
    return total / x.shape[0]


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """Classification loss: the batch-mean cross-entropy, with the batch accuracy beside it."""
    loss = F.cross_entropy(logits, labels)
    acc = (logits.argmax(-1) == labels).float().mean()
    return {"loss": loss, "accuracy": acc}


def binary_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> dict:
    """Multi-label loss: one logistic output per attribute (several may be present at once), the binary
    cross-entropy −[y log σ(s) + (1 − y) log(1 − σ(s))] averaged over the batch and the attributes, with the mean
    per-attribute accuracy (σ(s) > ½ taken as present) beside it."""
    targets = targets.to(logits.dtype)
    loss = F.binary_cross_entropy_with_logits(logits, targets)  # log-sigmoid form: no overflow for large |s|
    acc = ((logits > 0).to(logits.dtype) == targets).float().mean()
    return {"loss": loss, "accuracy": acc}


# -- the engine's view: fn(model, x, step, generator, **params) -> dict ---------------------------------------------
def vae_forward(model, x, generator):
    """The model's output on ``x`` (one posterior sample drawn from ``generator``) and log p(x | z) per example."""
    out = model(x, generator=generator)
    return out, model.log_likelihood(out.recon, x, constants=False)  # constants do not change gradients


# The objectives that read one posterior sample and draw no noise after the forward pass: each is the model's
# forward (:func:`vae_forward`) followed by a function of its output. Members of a stacked group that use different
# ones of these share that forward pass (see ``replab.train.loop``), so each is written as its terms alone.
def _beta_vae_terms(log_px, out, step, beta=1.0):
    return beta_vae(log_px, out.mu, out.logvar, beta)


def _beta_tc_vae_terms(log_px, out, step, beta=1.0, dataset_size=None, drop_constants=False):
    return beta_tc_vae(log_px, out.mu, out.logvar, out.z, beta, dataset_size, drop_constants)


def _annealed_vae_terms(log_px, out, step, gamma=1000.0, c_max=25.0, iteration_threshold=100_000):
    return annealed_vae(log_px, out.mu, out.logvar, step, gamma, c_max, iteration_threshold)


def _dip_vae_ii_terms(log_px, out, step, lambda_od=1.0, lambda_d=None):
    return dip_vae_ii(log_px, out.mu, out.logvar, lambda_od, lambda_d)


ONE_SAMPLE_TERMS: dict[str, Callable] = {"beta_vae": _beta_vae_terms, "beta_tc_vae": _beta_tc_vae_terms,
                                         "annealed_vae": _annealed_vae_terms, "dip_vae_ii": _dip_vae_ii_terms}


def _one_sample(terms: Callable) -> Callable:
    def run(model, x, step, generator, **params):
        out, log_px = vae_forward(model, x, generator)
        return terms(log_px, out, step, **params)
    return run


def _run_mmd_vae(model, x, step, generator, beta=1.0, prior_variance=2.0, unbiased=False):
    out, log_px = vae_forward(model, x, generator)
    return mmd_vae(log_px, out.z, beta, prior_variance, unbiased, generator)


def _run_renyi(model, x, step, generator, alpha=1.0, n_samples=1, legacy_argo_reduction=False):
    return renyi_vae(model, x, alpha, n_samples, generator, legacy_argo_reduction=legacy_argo_reduction)


OBJECTIVES: dict[str, Callable] = {
    **{name: _one_sample(terms) for name, terms in ONE_SAMPLE_TERMS.items()},
    "mmd_vae": _run_mmd_vae,
    "renyi": _run_renyi,
}


def objective(name: str) -> Callable:
    """The engine-side objective called ``name`` (see :data:`OBJECTIVES`); unknown names raise ValueError."""
    if name not in OBJECTIVES:
        raise ValueError(f"objective must be one of {sorted(OBJECTIVES)} (or 'cross_entropy' for classifiers), "
                         f"got {name!r}")
    return OBJECTIVES[name]


# The allowed values of every objective hyper-parameter (checked once, by the training configuration).
PARAMETERS: dict[str, dict[str, Rule]] = {
    "beta_vae": {"beta": Rule("float", 0)},
    "beta_tc_vae": {"beta": Rule("float", 0), "dataset_size": Rule("int", 1, optional=True),
                    "drop_constants": Rule("bool")},
    "annealed_vae": {"gamma": Rule("float", 0), "c_max": Rule("float", 0), "iteration_threshold": Rule("int", 1)},
    "dip_vae_ii": {"lambda_od": Rule("float", 0), "lambda_d": Rule("float", 0, optional=True)},
    "mmd_vae": {"beta": Rule("float", 0), "prior_variance": Rule("float", 0, low_open=True),
                "unbiased": Rule("bool")},
    "renyi": {"alpha": Rule("float"), "n_samples": Rule("int", 1), "legacy_argo_reduction": Rule("bool")},
}

# Hyper-parameters that only scale terms of the loss: members of a stacked group may differ in these (each
# member's value travels as a tensor through ``torch.func.vmap``); every other one must be equal in a group.
STACKABLE: dict[str, tuple[str, ...]] = {"beta_vae": ("beta",), "beta_tc_vae": ("beta",), "mmd_vae": ("beta",),
                                         "annealed_vae": ("gamma",), "dip_vae_ii": ("lambda_od", "lambda_d"),
                                         "renyi": ("alpha",)}
