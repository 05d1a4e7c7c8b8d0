"""The disentanglement_lib convolutional VAE for 64×64 images (Locatello et al. 2019, Table 1; Bonheme & Grześ).

Encoder: Conv(32, s2) → Conv(32, s2) → Conv(64, s2) → Conv(64, s2) → Dense(256), all ReLU, then linear heads for
the mean and log-variance of a 10-dimensional latent. Decoder: Dense(256) → Dense(4·4·64) → ConvT(64) → ConvT(32) →
ConvT(32) → ConvT(C), kernel 4 and stride 2, ReLU except the output (Bernoulli logits). The public code uses kernel
sizes 4, 4, 2, 2 in the encoder where the paper's table says 4 throughout; ``kernel_sizes`` defaults to the code.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .vae import VAE, check_choice, check_positive, same_padding_conv, LIKELIHOODS

__all__ = ["Conv64Config", "Conv64VAE", "build", "conv_encoder_blocks"]


@dataclass(frozen=True)
class Conv64Config:
    """Hyper-parameters of :class:`Conv64VAE`; ``image_size`` must be a multiple of 16."""
    latent_dim: int = 10
    channels: int = 1
    image_size: int = 64
    kernel_sizes: tuple[int, int, int, int] = (4, 4, 2, 2)
    widths: tuple[int, int, int, int] = (32, 32, 64, 64)
    hidden: int = 256
    likelihood: str = "bernoulli"
    output_variance: float = 1.0

    def __post_init__(self):
        check_positive(self.latent_dim, "latent_dim", integer=True)
        check_positive(self.channels, "channels", integer=True)
        check_positive(self.hidden, "hidden", integer=True)
        check_choice(self.likelihood, LIKELIHOODS, "likelihood")
        if self.image_size % 16 or self.image_size <= 0:
            raise ValueError(f"image_size must be a positive multiple of 16, got {self.image_size!r}")
        for name in ("kernel_sizes", "widths"):
            value = tuple(getattr(self, name))
            if len(value) != 4 or not all(isinstance(v, int) and v > 0 for v in value):
                raise ValueError(f"{name} must be four positive integers, got {getattr(self, name)!r}")
            object.__setattr__(self, name, value)


def conv_encoder_blocks(channels: int, image_size: int, kernel_sizes, widths, hidden: int) -> nn.ModuleDict:
    """disentanglement_lib's ``conv_encoder`` up to Dense(256): blocks named "1" … "5"."""
    blocks, c_in = {}, channels
    for i, (k, c_out) in enumerate(zip(kernel_sizes, widths), start=1):
        blocks[str(i)] = nn.Sequential(same_padding_conv(c_in, c_out, k, 2), nn.ReLU())
        c_in = c_out
    side = image_size // 16
    blocks["5"] = nn.Sequential(nn.Flatten(), nn.Linear(c_in * side * side, hidden), nn.ReLU())
    return nn.ModuleDict(blocks)


class Conv64VAE(VAE):
    """disentanglement_lib's ``conv_encoder`` + ``deconv_decoder`` (see the module docstring)."""

    def __init__(self, config: Conv64Config = Conv64Config()):
        super().__init__(config.likelihood, config.output_variance)
        self.config = config
        c, s, w = config.channels, config.image_size, config.widths
        self.input_shape = (c, s, s)
        self.encoder = conv_encoder_blocks(c, s, config.kernel_sizes, w, config.hidden)
        self.mean = nn.Linear(config.hidden, config.latent_dim)
        self.variance = nn.Linear(config.hidden, config.latent_dim)
        side = s // 16

        def up(c_in, c_out):  # ConvT(k4, s2, "same") doubles the side
            return nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)

        self.decoder = nn.ModuleDict({
            "1": nn.Sequential(nn.Linear(config.latent_dim, config.hidden), nn.ReLU()),
            "2": nn.Sequential(nn.Linear(config.hidden, w[3] * side * side), nn.ReLU()),
            "3": nn.Sequential(nn.Unflatten(1, (w[3], side, side)), up(w[3], w[3]), nn.ReLU()),
            "4": nn.Sequential(up(w[3], w[1]), nn.ReLU()),
            "5": nn.Sequential(up(w[1], w[0]), nn.ReLU()),
        })
        self.output = up(w[0], c)


def build(config: Conv64Config) -> Conv64VAE:
    return Conv64VAE(config)
