"""The WAE CelebA convolutional VAE used by Jamroż et al. (2020) (``--arch bigger``; Tolstikhin et al. 2018).

Encoder: Conv5×5 stride 2 with 128-256-512-1024 channels, each + BatchNorm + ReLU, then linear heads for the mean
and log-variance. Decoder: Dense(8·8·1024) + ReLU → ConvT5×5 stride 2 with 512-256-128 channels + BatchNorm + ReLU
→ ConvT5×5 stride 1 to 3 channels, passed through a sigmoid (pixels in [0, 1]) as the Gaussian mean. The widths are
a parameter so the ``quick`` profile can use a narrow copy. The reference β-VAE runs use σ² = 0.3 (SSE/(2·0.3));
the MMD runs use a plain SSE, which is σ² = 0.5 here.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .vae import VAE, check_choice, check_positive, same_padding_conv, LIKELIHOODS, OUTPUT_ACTIVATIONS

__all__ = ["WAECelebAConfig", "WAECelebAVAE", "build"]


@dataclass(frozen=True)
class WAECelebAConfig:
    """Hyper-parameters of :class:`WAECelebAVAE`; ``image_size`` must be a multiple of 16."""
    latent_dim: int = 64
    channels: int = 3
    image_size: int = 64
    widths: tuple[int, int, int, int] = (128, 256, 512, 1024)
    kernel_size: int = 5
    likelihood: str = "gaussian"
    output_variance: float = 0.3
    output_activation: str = "sigmoid"

    def __post_init__(self):
        check_positive(self.latent_dim, "latent_dim", integer=True)
        check_positive(self.channels, "channels", integer=True)
        if not (isinstance(self.kernel_size, int) and self.kernel_size > 0 and self.kernel_size % 2):
            raise ValueError(f"kernel_size must be a positive odd integer, got {self.kernel_size!r}")
        check_choice(self.likelihood, LIKELIHOODS, "likelihood")
        check_choice(self.output_activation, OUTPUT_ACTIVATIONS, "output_activation")
        if self.image_size % 16 or self.image_size <= 0:
            raise ValueError(f"image_size must be a positive multiple of 16, got {self.image_size!r}")
        widths = tuple(self.widths)
        if len(widths) != 4 or not all(isinstance(v, int) and v > 0 for v in widths):
            raise ValueError(f"widths must be four positive integers, got {self.widths!r}")
        object.__setattr__(self, "widths", widths)
        if self.likelihood == "bernoulli" and self.output_activation != "none":
            raise ValueError("output_activation must be 'none' with a Bernoulli likelihood (the output is logits)")


def _conv_bn_relu(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.ReLU())


class WAECelebAVAE(VAE):
    """See the module docstring; representations: encoder.1–4 (conv blocks), decoder.1 (dense) and 2–4."""

    def __init__(self, config: WAECelebAConfig = WAECelebAConfig()):
        super().__init__(config.likelihood, config.output_variance)
        self.config = config
        c, s, w, k = config.channels, config.image_size, config.widths, config.kernel_size
        self.input_shape = (c, s, s)
        blocks, c_in = {}, c
        for i, c_out in enumerate(w, start=1):
            blocks[str(i)] = _conv_bn_relu(same_padding_conv(c_in, c_out, k, 2), c_out)
            c_in = c_out
        blocks["4"].append(nn.Flatten())
        self.encoder = nn.ModuleDict(blocks)
        n_flat = w[3] * (s // 16) ** 2
        self.mean = nn.Linear(n_flat, config.latent_dim)
        self.variance = nn.Linear(n_flat, config.latent_dim)
        side = s // 8
        pad = (k - 1) // 2

        def up(c_in, c_out):  # a "same" transposed convolution: (n − 1)·2 − 2p + k + op = 2n
            return nn.ConvTranspose2d(c_in, c_out, k, stride=2, padding=pad, output_padding=2 + 2 * pad - k)

        self.decoder = nn.ModuleDict({
            "1": nn.Sequential(nn.Linear(config.latent_dim, w[3] * side * side), nn.ReLU(),
                               nn.Unflatten(1, (w[3], side, side))),
            "2": _conv_bn_relu(up(w[3], w[2]), w[2]),
            "3": _conv_bn_relu(up(w[2], w[1]), w[1]),
            "4": _conv_bn_relu(up(w[1], w[0]), w[0]),
        })
        last = nn.ConvTranspose2d(w[0], c, k, stride=1, padding=(k - 1) // 2)
        act = {"none": None, "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh()}[config.output_activation]
        self.output = last if act is None else nn.Sequential(last, act)


def build(config: WAECelebAConfig) -> WAECelebAVAE:
    return WAECelebAVAE(config)
