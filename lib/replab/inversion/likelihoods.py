"""Pixel likelihoods of the inversion models: exact log-probabilities of 8-bit images, and sampling.

Two distributions over the 256 values of a sub-pixel, each parameterised by the network's output at that pixel:

* :class:`Softmax256`: a 256-way categorical per channel (the original PixelCNN's; Nash et al. use it for MNIST,
  Appendix A). Channels of one pixel are independent given the pixels before it.
* :class:`LogisticMixture`: the discretised mixture of logistics of PixelCNN++ (Salimans et al., 2017, Eqs. 2-3)
  with the linear channel coupling: the mean of channel ``c`` is shifted by ``sum_{j<c} a_{cj} x_j`` where ``x_j``
  are the *true* earlier channels during training and the sampled ones during sampling.

Both return the exact log-likelihood in nats of images given as integers in ``[0, 255]`` (never binarised or
dequantised), per image: summed over channels and pixels. Network outputs have shape ``(B, n_outputs, H, W)``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["Softmax256", "LogisticMixture", "make_likelihood", "check_images", "to_unit_range"]

N_LEVELS = 256
# Smallest log-scale of a logistic component (as in PixelCNN++): keeps 1/s finite in float32.
MIN_LOG_SCALE = -7.0


def check_images(x: torch.Tensor, n_channels: int | None = None, name: str = "x") -> torch.Tensor:
    """Validate 8-bit images of shape (B, C, H, W) holding integers in [0, 255]; return them as int64."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.ndim != 4:
        raise ValueError(f"{name}: expected images of shape (B, C, H, W), got shape {tuple(x.shape)}")
    if n_channels is not None and x.shape[1] != n_channels:
        raise ValueError(f"{name}: expected {n_channels} channel(s), got {x.shape[1]}")
    if torch.is_floating_point(x):
        if not torch.isfinite(x).all():
            raise ValueError(f"{name}: contains NaN or infinite values")
        if (x != x.round()).any():
            raise ValueError(f"{name}: expected integer pixel values in [0, 255] (8-bit images), got fractions; "
                             "scale images in [0, 1] by 255 and round")
    x = x.long()
    if x.numel() and (x.min() < 0 or x.max() > N_LEVELS - 1):
        raise ValueError(f"{name}: pixel values must lie in [0, 255], got [{int(x.min())}, {int(x.max())}]")
    return x


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """Map 8-bit values {0, ..., 255} to [-1, 1], the scale the network reads and the logistics live on."""
    return x.float() * (2.0 / (N_LEVELS - 1)) - 1.0


def _pick_temperature(temperature: float) -> float:
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    return float(temperature)


def _gumbel(shape, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, device=like.device, dtype=torch.float32)
    return -torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))


class Softmax256:
    """A 256-way softmax per sub-pixel; ``n_outputs = 256 * C`` channels laid out as (C, 256)."""

    def __init__(self, n_channels: int = 1):
        if n_channels < 1:
            raise ValueError(f"n_channels must be >= 1, got {n_channels}")
        self.n_channels = n_channels
        self.n_outputs = N_LEVELS * n_channels

    def _logits(self, out: torch.Tensor) -> torch.Tensor:
        b, _, h, w = out.shape
        return out.float().reshape(b, self.n_channels, N_LEVELS, h, w)  # (B, C, 256, H, W)

    def log_prob_pixels(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x_{c,i,j} | x_<(i,j)) for every sub-pixel, shape (B, C, H, W), in nats."""
        logp = torch.log_softmax(self._logits(out), dim=2)
        return logp.gather(2, x.unsqueeze(2)).squeeze(2)

    def log_prob(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-image log-likelihood in nats, shape (B,)."""
        return self.log_prob_pixels(out, x).sum(dim=(1, 2, 3))

    def value_log_probs(self, out_pixel: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        """Log-probabilities of all 256 values of each channel at one pixel: (B, C, 256) from (B, n_outputs)."""
        return torch.log_softmax(out_pixel.float().reshape(-1, self.n_channels, N_LEVELS), dim=-1)

    def sample_pixel(self, out_pixel: torch.Tensor, temperature: float = 1.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample one pixel, (B, C) integers, from (B, n_outputs); temperature 0 takes the most likely value."""
        t = _pick_temperature(temperature)
        logits = out_pixel.float().reshape(-1, self.n_channels, N_LEVELS)
        if t == 0:
            return logits.argmax(-1)
        return (logits / t + _gumbel(logits.shape, logits, generator)).argmax(-1)


class LogisticMixture:
    """Discretised mixture of ``n_mix`` logistics with channel coupling (PixelCNN++).

    Output layout along the channel axis: mixture logits (K), then means (C·K), log-scales (C·K) and
    ``tanh``-squashed coupling coefficients (C(C-1)/2 · K), each block ordered (channel or pair, component).
    """

    def __init__(self, n_channels: int = 3, n_mix: int = 10):
        if n_channels < 1:
            raise ValueError(f"n_channels must be >= 1, got {n_channels}")
        if n_mix < 1:
            raise ValueError(f"n_mix must be >= 1, got {n_mix}")
        self.n_channels, self.n_mix = n_channels, n_mix
        self.n_pairs = n_channels * (n_channels - 1) // 2
        self.n_outputs = n_mix * (1 + 2 * n_channels + self.n_pairs)

    def _split(self, out: torch.Tensor):
        """(B, P, ...) -> logits (B, K, ...), means, log-scales (B, C, K, ...), coefficients (B, pairs, K, ...)."""
        k, c = self.n_mix, self.n_channels
        out = out.float()
        rest = out.shape[2:]
        logits = out[:, :k]
        means = out[:, k:k + c * k].reshape(out.shape[0], c, k, *rest)
        log_scales = out[:, k + c * k:k + 2 * c * k].reshape(out.shape[0], c, k, *rest).clamp(min=MIN_LOG_SCALE)
        coeffs = torch.tanh(out[:, k + 2 * c * k:].reshape(out.shape[0], self.n_pairs, k, *rest))
        return logits, means, log_scales, coeffs

    def _coupled_means(self, means: torch.Tensor, coeffs: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        """Shift channel c's means by sum_{j<c} a_{cj} x_j; ``xs`` (B, C, ...) is on the [-1, 1] scale."""
        if self.n_channels == 1:
            return means
        shifted = [means[:, 0]]
        pair = 0
        for c in range(1, self.n_channels):
            m = means[:, c]
            for j in range(c):
                m = m + coeffs[:, pair] * xs[:, j].unsqueeze(1)
                pair += 1
            shifted.append(m)
        return torch.stack(shifted, dim=1)

    @staticmethod
    def _log_bin_mass(xs: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor,
                      x_int: torch.Tensor) -> torch.Tensor:
        """log P(value) of each discretised logistic: CDF differences over the bin, open-ended at 0 and 255.

        For an inner bin, log(σ(a) − σ(b)) = b + log(expm1(a − b)) − softplus(a) − softplus(b), which is exact
        and free of cancellation in both tails (PixelCNN++'s code instead switches to the density at the bin
        centre when the difference falls below 1e-5).
        """
        inv_s = torch.exp(-log_scales)
        centred = xs - means
        half = 1.0 / (N_LEVELS - 1)
        a = inv_s * (centred + half)
        b = inv_s * (centred - half)
        # a − b = 2/(255 s) > 0; the floor only guards the unused branch of torch.where against log(0) at huge
        # scales, whose −inf would turn the gradient into NaN.
        inner = b + torch.log(torch.expm1((a - b).clamp(min=1e-30))) - F.softplus(a) - F.softplus(b)
        lowest = a - F.softplus(a)          # log σ(a): all mass below the top of bin 0
        highest = -F.softplus(b)            # log(1 − σ(b)): all mass above the bottom of bin 255
        return torch.where(x_int == 0, lowest, torch.where(x_int == N_LEVELS - 1, highest, inner))

    def log_prob_pixels(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x_{i,j} | x_<(i,j)) of every whole pixel (all channels), shape (B, H, W), in nats."""
        logits, means, log_scales, coeffs = self._split(out)
        xs = to_unit_range(x)                                        # (B, C, H, W)
        means = self._coupled_means(means, coeffs, xs)
        per_channel = self._log_bin_mass(xs.unsqueeze(2), means, log_scales, x.unsqueeze(2))  # (B, C, K, H, W)
        return torch.logsumexp(torch.log_softmax(logits, dim=1) + per_channel.sum(dim=1), dim=1)

    def log_prob(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-image log-likelihood in nats, shape (B,)."""
        return self.log_prob_pixels(out, x).sum(dim=(1, 2))

    def log_prob_channels(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x_c | x_<c, x_<(i,j)) of every sub-pixel, shape (B, C, H, W), in nats.

        The mixture couples channels, so each conditional is a ratio of mixtures over the channels up to ``c``;
        summed over ``c`` these telescope to :meth:`log_prob_pixels`."""
        logits, means, log_scales, coeffs = self._split(out)
        xs = to_unit_range(x)
        means = self._coupled_means(means, coeffs, xs)
        per_channel = self._log_bin_mass(xs.unsqueeze(2), means, log_scales, x.unsqueeze(2))  # (B, C, K, H, W)
        joint = torch.logsumexp(torch.log_softmax(logits, dim=1).unsqueeze(1) + per_channel.cumsum(dim=1), dim=2)
        return joint - F.pad(joint, (0, 0, 0, 0, 1, 0))[:, :-1]

    def sample_pixel(self, out_pixel: torch.Tensor, temperature: float = 1.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample one pixel, (B, C) integers, from (B, n_outputs).

        Temperature ``T`` divides the mixture logits and multiplies the logistic scales; ``T = 0`` takes the most
        likely component and its (coupled) mean.
        """
        t = _pick_temperature(temperature)
        logits, means, log_scales, coeffs = self._split(out_pixel)
        if t == 0:
            comp = logits.argmax(1)
        else:
            comp = (logits / t + _gumbel(logits.shape, logits, generator)).argmax(1)   # (B,)
        pick = comp.view(-1, 1, 1).expand(-1, self.n_channels, 1)
        mu = means.gather(2, pick).squeeze(2)                                          # (B, C)
        s = torch.exp(log_scales.gather(2, pick).squeeze(2)) * t
        a = coeffs.gather(2, comp.view(-1, 1, 1).expand(-1, self.n_pairs, 1)).squeeze(2) if self.n_pairs else None
        u = torch.rand(mu.shape, generator=generator, device=mu.device).clamp(1e-5, 1.0 - 1e-5)
        noise = s * (torch.log(u) - torch.log1p(-u))
        values, pair = [], 0
        for c in range(self.n_channels):
            m = mu[:, c] + noise[:, c]
            for j in range(c):
                m = m + a[:, pair] * to_unit_range(values[j])
                pair += 1
            values.append(((m.clamp(-1.0, 1.0) + 1.0) * (N_LEVELS - 1) / 2).round().long())
        return torch.stack(values, dim=1)


def make_likelihood(name: str, n_channels: int, n_mix: int = 10):
    """``"softmax"`` (:class:`Softmax256`) or ``"logistic"`` (:class:`LogisticMixture`)."""
    if name == "softmax":
        return Softmax256(n_channels)
    if name == "logistic":
        return LogisticMixture(n_channels, n_mix)
    raise ValueError(f"likelihood must be 'softmax' or 'logistic', got {name!r}")
