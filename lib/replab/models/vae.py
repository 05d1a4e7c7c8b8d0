"""The pieces every VAE in the zoo shares, written once.

A VAE here is a stack of named blocks. The encoder blocks ``encoder.1`` … ``encoder.k`` turn an image into a
feature vector, two linear heads give the posterior ``mean`` and log-variance (named ``variance``), a sample is
drawn by reparameterisation (``sampled``), the decoder blocks ``decoder.1`` … ``decoder.m`` map it back, and the
``output`` layer gives the parameters of the likelihood (Bernoulli logits, or the Gaussian mean). The module paths
are the representation names (``model.encoder["1"]`` is ``encoder.1``), so a hook by module name and
:meth:`VAE.representations` agree.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .. import noise as _noise

__all__ = ["VAE", "VAEOutput", "reparameterize", "bernoulli_log_likelihood", "gaussian_log_likelihood",
           "diagonal_gaussian_log_density", "check_choice", "check_positive", "same_padding_conv"]

LIKELIHOODS = ("bernoulli", "gaussian")
OUTPUT_ACTIVATIONS = ("none", "sigmoid", "tanh")


class VAEOutput(NamedTuple):
    """What a VAE's forward pass returns, each of shape (batch, ...)."""
    mu: torch.Tensor       # posterior means, (B, d)
    logvar: torch.Tensor   # posterior log-variances, (B, d)
    z: torch.Tensor        # reparameterised samples, (B, d)
    recon: torch.Tensor    # likelihood parameters: Bernoulli logits or Gaussian means, shaped like x


def check_choice(value, choices: Sequence, name: str):
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_positive(value, name: str, integer: bool = False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return value


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None,
                   n_samples: int | None = None) -> torch.Tensor:
    """z = μ + σ·ε with ε ~ N(0, I) (Kingma & Welling 2014, §2.4); differentiable in μ and log σ².

    With ``n_samples`` = K the result has shape (K, B, d), one sample per row of each of the K slices.
    """
    shape = mu.shape if n_samples is None else (n_samples, *mu.shape)
    eps = _noise.randn(shape, generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | z) = Σ_pixels [x log σ(ℓ) + (1 − x) log(1 − σ(ℓ))] per example, for x in [0, 1].

    This is the negative of disentanglement_lib's ``sigmoid_cross_entropy_with_logits`` summed over pixels.
    ``logits`` may carry leading sample dimensions (K, B, ...) broadcast against x of shape (B, ...).
    """
    ll = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
    return ll.flatten(start_dim=logits.ndim - x.ndim + 1).sum(-1)


def gaussian_log_likelihood(mean: torch.Tensor, x: torch.Tensor, variance: float = 1.0,
                            constants: bool = True) -> torch.Tensor:
    """log N(x; mean, σ²I) per example = −‖x − mean‖²/(2σ²) − (D/2) log(2πσ²).

    With ``constants=False`` the last term is dropped (the sum-of-squares losses of the WAE code,
    Jamroż et al. use SSE/(2·0.3)); gradients are the same. Leading sample dimensions broadcast as above.
    """
    sq = (x.expand_as(mean) - mean).pow(2)
    sq = sq.flatten(start_dim=mean.ndim - x.ndim + 1).sum(-1)
    ll = -0.5 * sq / variance
    if constants:
        n_dims = x[0].numel()
        ll = ll - 0.5 * n_dims * math.log(2 * math.pi * variance)
    return ll


def diagonal_gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Element-wise log N(z; μ, exp(logvar)) (no sum over dimensions); broadcasts like its arguments."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def same_padding_conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 2) -> nn.Module:
    """A convolution with TensorFlow's ``padding="same"``: output size ceil(input / stride) on even inputs.

    TensorFlow pads max(k − s, 0) in total, the extra pixel (if odd) after; the public code of the papers is TF.
    """
    total = max(kernel_size - stride, 0)
    before, after = total // 2, total - total // 2
    if before == after:
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=before)
    return nn.Sequential(nn.ZeroPad2d((before, after, before, after)),
                         nn.Conv2d(in_channels, out_channels, kernel_size, stride))


class VAE(nn.Module):
    """Base class: subclasses fill ``encoder`` and ``decoder`` (``nn.ModuleDict`` keyed "1", "2", …) and the
    ``mean``, ``variance`` (log-variance) and ``output`` modules, and set ``input_shape`` (C, H, W) or (D,).

    Parameters
    ----------
    likelihood : {"bernoulli", "gaussian"}
        Bernoulli over pixels in [0, 1] with ``output`` giving logits, or a Gaussian N(output, σ²I).
    output_variance : float
        σ² of the Gaussian likelihood (ignored for Bernoulli).
    """

    def __init__(self, likelihood: str = "bernoulli", output_variance: float = 1.0):
        super().__init__()
        self.likelihood = check_choice(likelihood, LIKELIHOODS, "likelihood")
        self.output_variance = float(check_positive(output_variance, "output_variance"))
        self.input_shape: tuple[int, ...] = ()
        self.encoder = nn.ModuleDict()
        self.decoder = nn.ModuleDict()

    # -- the model -----------------------------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.mean.out_features

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x must be a tensor, got {type(x).__name__}")
        if tuple(x.shape[1:]) != tuple(self.input_shape):
            raise ValueError(f"x: expected shape (batch, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(x.shape)}")
        return x

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters (μ, log σ²), each of shape (B, d)."""
        h = self._check_input(x)
        for block in self.encoder.values():
            h = block(h)
        return self.mean(h), self.variance(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters for latent codes z of shape (..., d); leading dimensions are kept."""
        lead = z.shape[:-1]
        h = z.reshape(-1, z.shape[-1])
        for block in self.decoder.values():
            h = block(h)
        out = self.output(h)
        return out.reshape(*lead, *out.shape[1:])

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, generator)
        return VAEOutput(mu, logvar, z, self.decode(z))

    def log_likelihood(self, recon: torch.Tensor, x: torch.Tensor, constants: bool = True) -> torch.Tensor:
        """log p(x | z) per example from the decoder's output ``recon`` (leading sample dimensions allowed)."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(recon, x)
        return gaussian_log_likelihood(recon, x, self.output_variance, constants=constants)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The decoded posterior mean, as an image: sigmoid of the logits, or the Gaussian mean."""
        recon = self.decode(self.encode(x)[0])
        return torch.sigmoid(recon) if self.likelihood == "bernoulli" else recon

    # -- named representations -----------------------------------------------------------------------------
    def layer_names(self) -> list[str]:
        """Every representation name, in forward order."""
        return (["input"] + [f"encoder.{k}" for k in self.encoder] + ["mean", "variance", "sampled"]
                + [f"decoder.{k}" for k in self.decoder] + ["output"])

    def representations(self, x: torch.Tensor, names: Sequence[str] | None = None,
                        generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The activations of every named layer for a batch x, as ``{name: tensor}`` in forward order.

        ``variance`` holds the log-variance head's output (the layer's own activations), ``sampled`` a
        reparameterised sample drawn with ``generator``, and ``output`` the likelihood parameters (logits for
        a Bernoulli decoder). Ask for a subset with ``names``; unknown names raise ``ValueError``.
        """
        known = self.layer_names()
        if names is not None:
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(f"names: unknown layer(s) {unknown}; known: {known}")
        reps = {"input": self._check_input(x)}
        h = x
        for key, block in self.encoder.items():
            h = reps[f"encoder.{key}"] = block(h)
        mu, logvar = reps["mean"], reps["variance"] = self.mean(h), self.variance(h)
        h = reps["sampled"] = reparameterize(mu, logvar, generator)
        for key, block in self.decoder.items():
            h = reps[f"decoder.{key}"] = block(h)
        reps["output"] = self.output(h)
        if names is not None:
            reps = {n: reps[n] for n in known if n in set(names)}
        return reps
