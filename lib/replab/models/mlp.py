"""The MLP VAE of Peşte, Malagò & Sârbu (2017) for 28×28 images.

Encoder and decoder are feed-forward networks with two hidden layers of 200 units (ReLU in the paper's runs); the
posterior is a diagonal Gaussian over a k-dimensional latent (k = 30, 40, 50 in the paper) and the decoder gives
Bernoulli parameters (logits) for each pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

from .fc import FCConfig, FCVAE

__all__ = ["MLPConfig", "MLPVAE", "build"]


@dataclass(frozen=True)
class MLPConfig:
    """Hyper-parameters of :class:`MLPVAE`."""
    latent_dim: int = 30
    input_shape: tuple[int, ...] = (1, 28, 28)
    hidden: tuple[int, ...] = (200, 200)
    activation: str = "relu"
    likelihood: str = "bernoulli"
    output_variance: float = 1.0

    def as_fc(self) -> FCConfig:
        return FCConfig(latent_dim=self.latent_dim, input_shape=tuple(self.input_shape),
                        encoder_widths=tuple(self.hidden), decoder_widths=tuple(reversed(self.hidden)),
                        encoder_activation=self.activation, decoder_activation=self.activation,
                        likelihood=self.likelihood, output_variance=self.output_variance)

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        object.__setattr__(self, "hidden", tuple(self.hidden))
        self.as_fc()  # validates every field with FCConfig's checks


class MLPVAE(FCVAE):
    """The same blocks as :class:`~replab.models.fc.FCVAE`, with Peşte et al.'s sizes and mirrored decoder."""

    def __init__(self, config: MLPConfig = MLPConfig()):
        super().__init__(config.as_fc())
        self.config = config


def build(config: MLPConfig) -> MLPVAE:
    return MLPVAE(config)
