"""The disentanglement_lib fully connected VAE (Locatello et al. 2019, Appendix; Bonheme & Grześ, App. G).

Encoder: Flatten → Dense(1200, ReLU) → Dense(1200, ReLU) → linear heads for the mean and log-variance.
Decoder: Dense(1200, tanh) ×3 → Dense(C·H·W), reshaped to the image (Bernoulli logits).
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .vae import VAE, check_choice, check_positive, LIKELIHOODS

__all__ = ["FCConfig", "FCVAE", "build", "dense_stack"]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "elu": nn.ELU, "softplus": nn.Softplus}


def dense_stack(d_in: int, widths, activation: str, flatten_first: bool = False) -> tuple[nn.ModuleDict, int]:
    """Dense layers with an activation, as blocks named "1", "2", …; returns them and the last width."""
    check_choice(activation, tuple(_ACTIVATIONS), "activation")
    blocks = {}
    for i, width in enumerate(widths, start=1):
        layers = [nn.Flatten()] if (flatten_first and i == 1) else []
        blocks[str(i)] = nn.Sequential(*layers, nn.Linear(d_in, width), _ACTIVATIONS[activation]())
        d_in = width
    return nn.ModuleDict(blocks), d_in


def check_widths(widths, name: str) -> tuple[int, ...]:
    widths = tuple(widths)
    if not widths or not all(isinstance(w, int) and w > 0 for w in widths):
        raise ValueError(f"{name} must be a non-empty sequence of positive integers, got {widths!r}")
    return widths


@dataclass(frozen=True)
class FCConfig:
    """Hyper-parameters of :class:`FCVAE`."""
    latent_dim: int = 10
    input_shape: tuple[int, ...] = (1, 64, 64)
    encoder_widths: tuple[int, ...] = (1200, 1200)
    decoder_widths: tuple[int, ...] = (1200, 1200, 1200)
    encoder_activation: str = "relu"
    decoder_activation: str = "tanh"
    likelihood: str = "bernoulli"
    output_variance: float = 1.0

    def __post_init__(self):
        check_positive(self.latent_dim, "latent_dim", integer=True)
        object.__setattr__(self, "input_shape", check_widths(self.input_shape, "input_shape"))
        object.__setattr__(self, "encoder_widths", check_widths(self.encoder_widths, "encoder_widths"))
        object.__setattr__(self, "decoder_widths", check_widths(self.decoder_widths, "decoder_widths"))
        check_choice(self.encoder_activation, tuple(_ACTIVATIONS), "encoder_activation")
        check_choice(self.decoder_activation, tuple(_ACTIVATIONS), "decoder_activation")
        check_choice(self.likelihood, LIKELIHOODS, "likelihood")


class FCVAE(VAE):
    """A fully connected VAE over inputs of any shape (flattened at the input, reshaped at the output)."""

    def __init__(self, config: FCConfig = FCConfig()):
        super().__init__(config.likelihood, config.output_variance)
        self.config = config
        self.input_shape = config.input_shape
        n_in = 1
        for s in config.input_shape:
            n_in *= s
        self.encoder, h = dense_stack(n_in, config.encoder_widths, config.encoder_activation, flatten_first=True)
        self.mean = nn.Linear(h, config.latent_dim)
        self.variance = nn.Linear(h, config.latent_dim)
        self.decoder, h = dense_stack(config.latent_dim, config.decoder_widths, config.decoder_activation)
        out = nn.Linear(h, n_in)
        self.output = out if len(config.input_shape) == 1 else nn.Sequential(
            out, nn.Unflatten(1, config.input_shape))


def build(config: FCConfig) -> FCVAE:
    return FCVAE(config)
