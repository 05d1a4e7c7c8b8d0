"""A conditional PixelCNN++ (Salimans et al., 2017) as the inversion model of Nash et al. (2019), Appendix A.

Layout (the two-stream, U-net-like PixelCNN++): a "down" stream ``u`` that sees the rows above a pixel and a
"down-right" stream ``ul`` that sees the rows above and the pixels to the left in the same row. Three resolutions
on the way up (``n_res`` gated residual layers each, strided shifted convolutions between them) and three on the
way down (``n_res``, ``n_res + 1``, ``n_res + 1`` layers, transposed shifted convolutions between them), every
down-pass layer reading the matching up-pass output through a skip connection. All convolutions are weight
normalised (with data-dependent initialisation, :meth:`PixelCNNpp.initialize`); each residual layer has one dropout.

Conditioning (Nash et al., Appendix A): a context vector (FC3, LOGITS) is linearly projected to a bias added in
every residual layer; a spatial context (CONV1, CONV2 maps) is resized to each resolution and projected by 1×1
convolutions to spatially varying biases. The projections of all layers at one resolution are one fused linear map
computed once per context, so sampling (``H·W`` forward passes) projects the context only once.

Images are 8-bit integers of shape (B, C, H, W); the likelihood is :mod:`replab.inversion.likelihoods`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._validation import check_finite
from ..noise import Dropout
from ..runtime import get_device, progress
from .likelihoods import check_images, make_likelihood, to_unit_range

__all__ = ["PixelCNNConfig", "PixelCNNpp"]


@dataclass(frozen=True)
class PixelCNNConfig:
    """Hyper-parameters of :class:`PixelCNNpp`.

    ``context_shape`` is ``None`` (unconditional), ``(D,)`` for a vector or ``(C, h, w)`` for a spatial map.
    Paper sizes (Appendix A): ``n_filters=64`` for MNIST (softmax likelihood), 196 for SVHN/CIFAR (logistic,
    ``n_mix=10``), ``n_res=3``, dropout 0.5 (0.1 for CONV1 on SVHN/CIFAR), ``context_dropout=0.2`` for CIFAR-FC3.
    """

    image_shape: tuple = (1, 28, 28)
    likelihood: str = "softmax"
    n_filters: int = 64
    n_res: int = 3
    n_mix: int = 10
    dropout: float = 0.5
    context_shape: tuple | None = None
    context_dropout: float = 0.0

    def validate(self) -> "PixelCNNConfig":
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f"image_shape must be (C, H, W) with positive sizes, got {self.image_shape}")
        for name in ("n_filters", "n_res", "n_mix"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("dropout", "context_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        if self.context_shape is not None and len(self.context_shape) not in (1, 3):
            raise ValueError(f"context_shape must be None, (D,) or (C, h, w), got {self.context_shape}")
        make_likelihood(self.likelihood, self.image_shape[0], self.n_mix)
        return self


# ----------------------------------------------------------------------------------------------------------------
# Weight-normalised layers (Salimans & Kingma, 2016): w = g · v / ||v||, per output channel.

class _WeightNormed(nn.Module):
    """Shared weight-norm machinery; subclasses say which weight axis holds the output channels."""

    out_axis = 0
    init_scale = 1.0

    def _setup(self, weight_shape, n_out, init_scale):
        self.v = nn.Parameter(torch.randn(weight_shape) * 0.05)
        self.g = nn.Parameter(torch.ones(n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.init_scale = init_scale
        self._data_init = False

    def weight(self) -> torch.Tensor:
        dims = [d for d in range(self.v.ndim) if d != self.out_axis]
        shape = [1] * self.v.ndim
        shape[self.out_axis] = -1
        return self.v * (self.g / torch.linalg.vector_norm(self.v, dim=dims)).view(shape)

    def _finish(self, y: torch.Tensor) -> torch.Tensor:
        """In data-dependent init, set g and bias so this batch's outputs have mean 0 and std ``init_scale``."""
        if not self._data_init:
            return y
        self._data_init = False
        if y.numel() < 2 * y.shape[1]:      # one value per channel: nothing to normalise by
            return y
        with torch.no_grad():
            dims = [0] + list(range(2, y.ndim))
            mean, std = y.mean(dim=dims), y.std(dim=dims, correction=0)
            # A channel constant over the batch (identical images, 1×1 maps) keeps its scale.
            scale = self.init_scale / torch.where(std > 1e-6, std, torch.ones_like(std))
            shape = [1, -1] + [1] * (y.ndim - 2)
            # y = Wx + b: the new layer gives scale·(Wx − mean(Wx)), whatever the bias was before.
            y = (y - mean.view(shape)) * scale.view(shape)
            self.g.mul_(scale)
            self.bias.copy_((self.bias - mean) * scale)
        return y


class WNConv2d(_WeightNormed):
    def __init__(self, c_in, c_out, kernel=(1, 1), stride=1, init_scale=1.0):
        super().__init__()
        self._setup((c_out, c_in, *kernel), c_out, init_scale)
        self.stride = stride

    def forward(self, x):
        return self._finish(F.conv2d(x, self.weight(), self.bias, stride=self.stride))


class WNConvTranspose2d(_WeightNormed):
    out_axis = 1

    def __init__(self, c_in, c_out, kernel, stride=2, init_scale=1.0):
        super().__init__()
        self._setup((c_in, c_out, *kernel), c_out, init_scale)
        self.stride = stride

    def forward(self, x):
        return self._finish(F.conv_transpose2d(x, self.weight(), self.bias, stride=self.stride, output_padding=1))


class WNLinear(_WeightNormed):
    def __init__(self, d_in, d_out, init_scale=1.0):
        super().__init__()
        self._setup((d_out, d_in), d_out, init_scale)

    def forward(self, x):
        return self._finish(F.linear(x, self.weight(), self.bias))


class ShiftedConv(nn.Module):
    """A causal convolution: "down" (kernel 2×3, sees the rows above and the current row, centred) or
    "downright" (kernel 2×2, sees up and left). Padding on the top (and sides) keeps outputs from seeing below."""

    def __init__(self, c_in, c_out, kind="down", stride=1, init_scale=1.0):
        super().__init__()
        kernel = (2, 3) if kind == "down" else (2, 2)
        self.pad = (1, 1, 1, 0) if kind == "down" else (1, 0, 1, 0)   # (left, right, top, bottom)
        self.conv = WNConv2d(c_in, c_out, kernel, stride, init_scale)

    def forward(self, x):
        return self.conv(F.pad(x, self.pad))


class ShiftedDeconv(nn.Module):
    """Stride-2 transposed causal convolution; cropping the output keeps every pixel from seeing below itself."""

    def __init__(self, c_in, c_out, kind="down"):
        super().__init__()
        self.kind = kind
        self.deconv = WNConvTranspose2d(c_in, c_out, (2, 3) if kind == "down" else (2, 2))

    def forward(self, x, size):
        y = self.deconv(x)
        h, w = size
        if self.kind == "down":
            return y[:, :, :h, 1:w + 1]
        return y[:, :, :h, :w]


def concat_elu(x: torch.Tensor) -> torch.Tensor:
    """ELU of [x, -x] along channels (PixelCNN++), doubling the channels."""
    return F.elu(torch.cat([x, -x], dim=1))


def down_shift(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def right_shift(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (1, 0))[..., :-1]


class GatedResidual(nn.Module):
    """x + a ⊙ σ(b), [a, b] = conv(dropout(concat_elu(conv(concat_elu(x)) + nin(concat_elu(skip))))) + bias(h)."""

    def __init__(self, channels, kind, n_skip, dropout):
        super().__init__()
        self.conv1 = ShiftedConv(2 * channels, channels, kind)
        self.skip = WNConv2d(2 * n_skip * channels, channels) if n_skip else None
        self.drop = Dropout(dropout)
        self.conv2 = ShiftedConv(2 * channels, 2 * channels, kind, init_scale=0.1)

    def forward(self, x, skip=None, bias=None):
        c = self.conv1(concat_elu(x))
        if self.skip is not None:
            c = c + self.skip(concat_elu(skip))
        c = self.conv2(self.drop(concat_elu(c)))
        if bias is not None:
            c = c + bias
        a, b = c.chunk(2, dim=1)
        return x + a * torch.sigmoid(b)


class PixelCNNpp(nn.Module):
    """Conditional PixelCNN++ over 8-bit images; ``forward(x, context)`` returns the likelihood's parameters.

    Parameters are those of :class:`PixelCNNConfig` (pass a config or keyword arguments).
    """

    def __init__(self, config: PixelCNNConfig | None = None, **kwargs):
        super().__init__()
        cfg = (config or PixelCNNConfig(**kwargs)).validate()
        if config is not None and kwargs:
            raise ValueError("pass either a config or keyword arguments, not both")
        self.config = cfg
        self.input_shape = tuple(cfg.image_shape)
        c_img, h, w = cfg.image_shape
        f, n = cfg.n_filters, cfg.n_res
        self.likelihood = make_likelihood(cfg.likelihood, c_img, cfg.n_mix)
        self.sizes = self._level_sizes(h, w)
        # +1 input channel of ones, so the zero padding of the borders is distinguishable from black pixels.
        self.in_u = ShiftedConv(c_img + 1, f, "down")
        self.in_ul_down = ShiftedConv(c_img + 1, f, "down")
        self.in_ul_right = ShiftedConv(c_img + 1, f, "downright")
        block = lambda kind, skips: GatedResidual(f, kind, skips, cfg.dropout)  # noqa: E731
        self.up_u = nn.ModuleList([nn.ModuleList([block("down", 0) for _ in range(n)]) for _ in range(3)])
        self.up_ul = nn.ModuleList([nn.ModuleList([block("downright", 1) for _ in range(n)]) for _ in range(3)])
        self.downsample_u = nn.ModuleList([ShiftedConv(f, f, "down", stride=2) for _ in range(2)])
        self.downsample_ul = nn.ModuleList([ShiftedConv(f, f, "downright", stride=2) for _ in range(2)])
        self.down_counts = [n, n + 1, n + 1]      # per down-pass level, from the coarsest
        self.down_u = nn.ModuleList([nn.ModuleList([block("down", 1) for _ in range(k)]) for k in self.down_counts])
        self.down_ul = nn.ModuleList([nn.ModuleList([block("downright", 2) for _ in range(k)])
                                      for k in self.down_counts])
        self.upsample_u = nn.ModuleList([ShiftedDeconv(f, f, "down") for _ in range(2)])
        self.upsample_ul = nn.ModuleList([ShiftedDeconv(f, f, "downright") for _ in range(2)])
        self.out = WNConv2d(f, self.likelihood.n_outputs, init_scale=0.1)
        # Residual layers per resolution (level 0 = full): both streams, up and down pass.
        self.layers_per_level = [2 * (n + self.down_counts[2 - lvl]) for lvl in range(3)]
        self.context_drop = Dropout(cfg.context_dropout)
        self.context_proj = None
        if cfg.context_shape is not None:
            if len(cfg.context_shape) == 1:
                self.context_proj = nn.ModuleList([WNLinear(cfg.context_shape[0], 2 * f * k, init_scale=0.1)
                                                   for k in self.layers_per_level])
            else:
                self.context_proj = nn.ModuleList([WNConv2d(cfg.context_shape[0], 2 * f * k, init_scale=0.1)
                                                   for k in self.layers_per_level])

    # ------------------------------------------------------------------------------------------------------------
    def _check_context(self, context, batch):
        shape = self.config.context_shape
        if shape is None:
            if context is not None:
                raise ValueError("context: this model is unconditional (context_shape=None) but a context was given")
            return None
        if context is None:
            raise ValueError(f"context: this model needs a context of shape (B, {', '.join(map(str, shape))})")
        if tuple(context.shape[1:]) != tuple(shape) or context.shape[0] != batch:
            raise ValueError(f"context: expected shape ({batch}, {', '.join(map(str, shape))}), "
                             f"got {tuple(context.shape)}")
        return context

    def context_biases(self, context: torch.Tensor | None):
        """Per-level lists of the bias added in each residual layer, in the order the layers run.

        Vector contexts give biases of shape (B, 2F, 1, 1), spatial ones (B, 2F, h_l, w_l). ``context_dropout``
        acts on the projections' outputs (Appendix A: "dropout ... to the outputs of the linear projection")."""
        if context is None or self.context_proj is None:
            return None
        context = context.float()
        out = []
        for lvl, proj in enumerate(self.context_proj):
            if context.ndim == 2:
                b = proj(context)[:, :, None, None]
            else:
                b = proj(F.interpolate(context, size=self.sizes[lvl], mode="bilinear", align_corners=False))
            b = self.context_drop(b)
            out.append(list(b.chunk(self.layers_per_level[lvl], dim=1)))
        return out

    @staticmethod
    def _level_sizes(h: int, w: int):
        return [(h, w), ((h + 1) // 2, (w + 1) // 2), ((h + 3) // 4, (w + 3) // 4)]

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, biases=None) -> torch.Tensor:
        """Likelihood parameters (B, n_outputs, H', W) for 8-bit images ``x`` (B, C, H', W) given ``context``.

        ``biases`` (from :meth:`context_biases`) replaces ``context`` when the same context is reused. ``x`` may
        hold only the top ``H' <= H`` rows: the outputs for those rows are the same as for the whole image,
        because no pixel sees the rows below it (sampling uses this)."""
        if biases is None:
            biases = self.context_biases(self._check_context(context, x.shape[0]))
        sizes = self._level_sizes(x.shape[2], x.shape[3])
        queues = None if biases is None else [iter(b) for b in biases]

        def take(lvl):
            if queues is None:
                return None
            b = next(queues[lvl])
            return b[:, :, :sizes[lvl][0]] if b.shape[2] > sizes[lvl][0] else b

        xs = to_unit_range(x) if not torch.is_floating_point(x) else x
        xs = torch.cat([xs, torch.ones_like(xs[:, :1])], dim=1)
        u = down_shift(self.in_u(xs))
        ul = down_shift(self.in_ul_down(xs)) + right_shift(self.in_ul_right(xs))
        us, uls = [u], [ul]
        for lvl in range(3):
            if lvl:
                u, ul = self.downsample_u[lvl - 1](u), self.downsample_ul[lvl - 1](ul)
                us.append(u), uls.append(ul)
            for layer_u, layer_ul in zip(self.up_u[lvl], self.up_ul[lvl]):
                u = layer_u(u, bias=take(lvl))
                ul = layer_ul(ul, skip=u, bias=take(lvl))
                us.append(u), uls.append(ul)
        u, ul = us.pop(), uls.pop()
        for i, lvl in enumerate((2, 1, 0)):
            if i:
                u = self.upsample_u[i - 1](u, sizes[lvl])
                ul = self.upsample_ul[i - 1](ul, sizes[lvl])
            for layer_u, layer_ul in zip(self.down_u[i], self.down_ul[i]):
                u = layer_u(u, skip=us.pop(), bias=take(lvl))
                ul = layer_ul(ul, skip=torch.cat([u, uls.pop()], dim=1), bias=take(lvl))
        return self.out(F.elu(ul))

    # ------------------------------------------------------------------------------------------------------------
    def log_prob(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Exact per-image log-likelihood log p(x | context) in nats, shape (B,), for 8-bit images."""
        x = check_images(x, self.config.image_shape[0])
        if tuple(x.shape[2:]) != tuple(self.config.image_shape[1:]):
            raise ValueError(f"x: expected images of size {self.config.image_shape[1:]}, got {tuple(x.shape[2:])}")
        if context is not None:
            check_finite(context, "context")
        return self.likelihood.log_prob(self(x, context), x)

    def nll(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Per-image negative log-likelihood in nats, shape (B,)."""
        return -self.log_prob(x, context)

    @torch.no_grad()
    def initialize(self, x: torch.Tensor, context: torch.Tensor | None = None) -> "PixelCNNpp":
        """Data-dependent initialisation of every weight-normalised layer on one batch (Salimans & Kingma)."""
        x = check_images(x, self.config.image_shape[0])
        for m in self.modules():
            if isinstance(m, _WeightNormed):
                m._data_init = True
        self(x, context)
        return self

    @torch.no_grad()
    def sample(self, n: int | None = None, context: torch.Tensor | None = None, temperature: float = 1.0,
               seed: int = 0, batch_size: int = 256, device: str = "auto") -> torch.Tensor:
        """Draw 8-bit images (n, C, H, W), one per context row (or ``n`` unconditional ones).

        Raster order, one forward pass per pixel (``H·W`` in all), in eval mode without gradients; the context
        is projected once. ``temperature`` scales the pixel distributions (0 gives the most likely values).
        """
        dev = get_device(device)
        if context is not None:
            if n is not None and n != context.shape[0]:
                raise ValueError(f"n={n} differs from the number of contexts {context.shape[0]}")
            n = context.shape[0]
        if n is None or n < 1:
            raise ValueError(f"n must be a positive number of samples, got {n}")
        was_training, old_device = self.training, next(self.parameters()).device
        self.eval().to(dev)
        g = torch.Generator(device=dev)
        g.manual_seed(int(seed))
        c_img, h, w = self.config.image_shape
        chunks = []
        try:
            for start in range(0, n, batch_size):
                m = min(batch_size, n - start)
                ctx = None if context is None else context[start:start + m].to(dev)
                biases = self.context_biases(self._check_context(ctx, m))
                x = torch.zeros(m, c_img, h, w, dtype=torch.long, device=dev)
                for pos in progress(range(h * w), desc="sampling", total=h * w):
                    i, j = divmod(pos, w)
                    # Pixel (i, j) only depends on rows <= i, so the rows below are not computed.
                    out = self(x[:, :, :i + 1], biases=biases)
                    x[:, :, i, j] = self.likelihood.sample_pixel(out[:, :, i, j], temperature, g)
                chunks.append(x.cpu())
        finally:
            self.train(was_training).to(old_device)
        return torch.cat(chunks).to(torch.uint8)
