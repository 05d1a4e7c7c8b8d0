"""Densities shared by the methods: a multivariate Student-t and mixtures of it.

The DP-GMM posterior predictive (Jamroż et al. 2020, Eq. 6 and Appendix B) is a mixture of multivariate Student-t
distributions; its marginals (Eq. 9) are mixtures of univariate Student-t. Both are built by composition with
:class:`torch.distributions.MixtureSameFamily`, so sampling, ``log_prob`` and batching follow torch's rules.
"""
from __future__ import annotations

import math

import torch
from torch.distributions import Categorical, Chi2, Distribution, MixtureSameFamily, StudentT, constraints
from torch.distributions.utils import _standard_normal

__all__ = ["MultivariateStudentT", "student_t_mixture", "student_t_marginal_mixture", "sample_student_t_mixture"]


class MultivariateStudentT(Distribution):
    r"""Multivariate Student-t with ``df`` degrees of freedom, location ``loc`` and scale ``scale_tril @ scale_tril.T``.

    .. math:: p(x) = \frac{\Gamma((\nu + D)/2)}{\Gamma(\nu/2) (\nu\pi)^{D/2} |\Sigma|^{1/2}}
              \left(1 + \frac{(x-\mu)^T \Sigma^{-1} (x-\mu)}{\nu}\right)^{-(\nu + D)/2}

    Parameters
    ----------
    df : tensor of shape batch_shape (or broadcastable), positive.
    loc : tensor of shape batch_shape + (D,).
    scale_tril : tensor of shape batch_shape + (D, D), lower triangular with a positive diagonal.

    ``rsample`` draws ``loc + scale_tril z sqrt(df / g)`` with ``z ~ N(0, I)`` and ``g ~ chi2(df)``, reparameterised
    through torch's gamma sampler.
    """
    arg_constraints = {"df": constraints.positive, "loc": constraints.real_vector,
                       "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, df, loc, scale_tril, validate_args=None):
        loc = torch.as_tensor(loc)
        scale_tril = torch.as_tensor(scale_tril, dtype=loc.dtype, device=loc.device)
        df = torch.as_tensor(df, dtype=loc.dtype, device=loc.device)
        if loc.dim() < 1:
            raise ValueError("loc: expected at least one dimension (the event dimension D)")
        if scale_tril.dim() < 2 or scale_tril.shape[-1] != scale_tril.shape[-2] \
                or scale_tril.shape[-1] != loc.shape[-1]:
            raise ValueError(f"scale_tril: expected shape (..., {loc.shape[-1]}, {loc.shape[-1]}), "
                             f"got {tuple(scale_tril.shape)}")
        batch_shape = torch.broadcast_shapes(df.shape, loc.shape[:-1], scale_tril.shape[:-2])
        event_shape = loc.shape[-1:]
        self.df = df.expand(batch_shape)
        self.loc = loc.expand(batch_shape + event_shape)
        self.scale_tril = scale_tril.expand(batch_shape + event_shape + event_shape)
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(MultivariateStudentT, _instance)
        batch_shape = torch.Size(batch_shape)
        new.df = self.df.expand(batch_shape)
        new.loc = self.loc.expand(batch_shape + self.event_shape)
        new.scale_tril = self.scale_tril.expand(batch_shape + self.event_shape + self.event_shape)
        super(MultivariateStudentT, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self):
        m = self.loc.clone()
        m[self.df <= 1] = float("nan")
        return m

    @property
    def covariance_matrix(self):
        cov = self.scale_tril @ self.scale_tril.transpose(-1, -2)
        factor = (self.df / (self.df - 2)).masked_fill(self.df <= 2, float("inf"))
        return cov * factor[..., None, None]

    @property
    def variance(self):
        return torch.diagonal(self.covariance_matrix, dim1=-2, dim2=-1)

    @property
    def marginal_scale(self):
        """Scale of each univariate marginal, ``sqrt(diag(scale_tril scale_tril^T))``, shape batch + (D,)."""
        return self.scale_tril.pow(2).sum(-1).sqrt()

    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        z = _standard_normal(shape, dtype=self.loc.dtype, device=self.loc.device)
        g = Chi2(self.df).rsample(sample_shape)
        y = torch.matmul(self.scale_tril, z.unsqueeze(-1)).squeeze(-1)
        return self.loc + y * torch.rsqrt(g / self.df).unsqueeze(-1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        d = self.event_shape[0]
        # one batched matmul against the inverse factors is much faster than a broadcast triangular solve
        y = torch.matmul(self._inverse_tril, (value - self.loc).unsqueeze(-1)).squeeze(-1)
        maha = y.pow(2).sum(-1)
        half_logdet = torch.log(torch.diagonal(self.scale_tril, dim1=-2, dim2=-1)).sum(-1)
        df = self.df
        return (torch.lgamma(0.5 * (df + d)) - torch.lgamma(0.5 * df) - 0.5 * d * torch.log(df * math.pi)
                - half_logdet - 0.5 * (df + d) * torch.log1p(maha / df))

    @property
    def _inverse_tril(self):
        if getattr(self, "_inv", None) is None:
            eye = torch.eye(self.event_shape[0], dtype=self.loc.dtype, device=self.loc.device)
            self._inv = torch.linalg.solve_triangular(self.scale_tril, eye, upper=False)
        return self._inv

    def entropy(self):
        raise NotImplementedError("MultivariateStudentT.entropy is not implemented")


def student_t_mixture(weights: torch.Tensor, df: torch.Tensor, loc: torch.Tensor,
                      scale_tril: torch.Tensor) -> MixtureSameFamily:
    """Mixture of multivariate Student-t: weights (..., K) (normalised here), df (..., K), loc (..., K, D),
    scale_tril (..., K, D, D)."""
    return MixtureSameFamily(Categorical(probs=weights / weights.sum(-1, keepdim=True)),
                             MultivariateStudentT(df, loc, scale_tril))


def student_t_marginal_mixture(weights: torch.Tensor, df: torch.Tensor, loc: torch.Tensor,
                               scale: torch.Tensor) -> MixtureSameFamily:
    """The D univariate marginals of a Student-t mixture (Eq. 9) as one distribution of batch shape (D,).

    weights and df have shape (K,), loc and scale (K, D) (the per-dimension marginal scales). ``log_prob`` of
    values of shape (..., D) returns each dimension's marginal log-density, shape (..., D).
    """
    d = loc.shape[-1]
    probs = (weights / weights.sum()).expand(d, -1)
    comps = StudentT(df.expand(d, -1), loc.transpose(0, 1), scale.transpose(0, 1))
    return MixtureSameFamily(Categorical(probs=probs), comps)


def sample_student_t_mixture(weights: torch.Tensor, df: torch.Tensor, loc: torch.Tensor, scale_tril: torch.Tensor,
                             n: int) -> torch.Tensor:
    """``n`` draws from the Student-t mixture (weights (K,), df (K,), loc (K, D), scale_tril (K, D, D)).

    ``MixtureSameFamily.sample`` draws from every component for each sample and keeps one, K times the work;
    here the component counts are drawn once (multinomial) and each component draws only its share. The rows come
    out grouped by component, which does not matter for Monte Carlo averages. Uses torch's global generator.
    """
    probs = weights / weights.sum()
    k = torch.multinomial(probs, n, replacement=True).bincount(minlength=len(probs)).tolist()
    parts = [MultivariateStudentT(df[j], loc[j], scale_tril[j]).sample((m,)) for j, m in enumerate(k) if m > 0]
    return torch.cat(parts)
