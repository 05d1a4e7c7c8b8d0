"""Classifiers: the disentanglement_lib encoder with a classification head, and a VGG-style CNN.

Both expose :meth:`representations` like the VAEs. :class:`DlibClassifier` (Bonheme & Grześ 2023, App. H) names
``input``, ``encoder.1`` … ``encoder.5`` and ``output`` (logits). :class:`VGGClassifier` (Jamroż et al. 2020, the
``CCACNN`` of their code) is a stack of conv3×3 → BatchNorm → ReLU (→ Dropout2d) blocks; it names ``input``,
``conv.i`` (the convolution's output, before BatchNorm and ReLU, where Jamroż et al. take their fingerprints),
``block.i`` (the block's output) and ``output`` (logits of the linear head on the flattened last block).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..noise import Dropout
from .conv64 import conv_encoder_blocks
from .vae import check_positive

__all__ = ["DlibClassifierConfig", "DlibClassifier", "VGGConfig", "VGGClassifier", "vgg_layout", "build_dlib",
           "build_vgg"]

# (channels, stride) of Jamroż et al.'s 11-layer "x512" network; narrower ones scale the channels.
VGG11_LAYOUT = ((64, 1), (64, 1), (128, 2), (128, 1), (128, 1), (256, 2), (256, 1), (256, 1), (512, 2), (512, 1),
                (512, 1))
# The 8-layer variant keeps the three down-sampling steps; its exact layout is not in the notes, this one drops one
# non-strided layer per stage after the first (an assumption, stated on the pages that use it).
VGG8_LAYOUT = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1))


def vgg_layout(depth: int = 11, width: int = 512) -> tuple[tuple[int, int], ...]:
    """The (channels, stride) list of an ``depth``×``width`` network (11×512, 11×128, 8×256, ...)."""
    layouts = {11: VGG11_LAYOUT, 8: VGG8_LAYOUT}
    if depth not in layouts:
        raise ValueError(f"depth must be one of {tuple(layouts)}, got {depth!r}")
    check_positive(width, "width", integer=True)
    return tuple((max(1, round(c * width / 512)), s) for c, s in layouts[depth])


def _representations(model: nn.Module, x: torch.Tensor, steps, names: Sequence[str] | None):
    """Run ``steps`` (name, module) in order, recording every named output; filter to ``names``."""
    known = ["input"] + [n for n, _ in steps]
    if names is not None:
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"names: unknown layer(s) {unknown}; known: {known}")
    reps, h = {"input": x}, x
    for name, module in steps:
        h = reps[name] = module(h)
    if names is not None:
        reps = {n: reps[n] for n in known if n in set(names)}
    return reps


def _check_image(x, shape, name="x"):
    if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != tuple(shape):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected shape (batch, {', '.join(map(str, shape))}), got {got}")
    return x


@dataclass(frozen=True)
class DlibClassifierConfig:
    """The disentanglement_lib conv encoder (to its Dense(256) layer) followed by a linear classifier."""
    n_classes: int = 10
    channels: int = 1
    image_size: int = 64
    kernel_sizes: tuple[int, int, int, int] = (4, 4, 2, 2)
    widths: tuple[int, int, int, int] = (32, 32, 64, 64)
    hidden: int = 256

    def __post_init__(self):
        check_positive(self.n_classes, "n_classes", integer=True)
        from .conv64 import Conv64Config  # the same checks as the VAE's encoder
        Conv64Config(channels=self.channels, image_size=self.image_size, kernel_sizes=self.kernel_sizes,
                     widths=self.widths, hidden=self.hidden)
        object.__setattr__(self, "kernel_sizes", tuple(self.kernel_sizes))
        object.__setattr__(self, "widths", tuple(self.widths))


class DlibClassifier(nn.Module):
    def __init__(self, config: DlibClassifierConfig = DlibClassifierConfig()):
        super().__init__()
        self.config = config
        self.input_shape = (config.channels, config.image_size, config.image_size)
        self.encoder = conv_encoder_blocks(config.channels, config.image_size, config.kernel_sizes,
                                           config.widths, config.hidden)
        self.output = nn.Linear(config.hidden, config.n_classes)

    def _steps(self):
        return [(f"encoder.{k}", m) for k, m in self.encoder.items()] + [("output", self.output)]

    def layer_names(self) -> list[str]:
        return ["input"] + [n for n, _ in self._steps()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _check_image(x, self.input_shape)
        for _, module in self._steps():
            h = module(h)
        return h

    def representations(self, x: torch.Tensor, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """``{name: activations}`` for every named layer (or the subset ``names``), in forward order."""
        return _representations(self, _check_image(x, self.input_shape), self._steps(), names)


@dataclass(frozen=True)
class VGGConfig:
    """A VGG-style CNN: ``layout`` is a sequence of (channels, stride); see :func:`vgg_layout`."""
    layout: tuple[tuple[int, int], ...] = VGG11_LAYOUT
    n_classes: int = 10
    channels: int = 3
    image_size: int = 32
    dropout: float = 0.0

    def __post_init__(self):
        layout = tuple((int(c), int(s)) for c, s in self.layout)
        if not layout or not all(c > 0 and s in (1, 2) for c, s in layout):
            raise ValueError(f"layout must be a non-empty sequence of (channels > 0, stride 1 or 2), got "
                             f"{self.layout!r}")
        object.__setattr__(self, "layout", layout)
        check_positive(self.n_classes, "n_classes", integer=True)
        check_positive(self.channels, "channels", integer=True)
        check_positive(self.image_size, "image_size", integer=True)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")


class _VGGBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.bn = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.dropout = Dropout(dropout, channelwise=True) if dropout > 0 else nn.Identity()

    def forward(self, x):
        return self.dropout(self.relu(self.bn(self.conv(x))))


class VGGClassifier(nn.Module):
    def __init__(self, config: VGGConfig = VGGConfig()):
        super().__init__()
        self.config = config
        self.input_shape = (config.channels, config.image_size, config.image_size)
        blocks, c_in, side = {}, config.channels, config.image_size
        for i, (c_out, stride) in enumerate(config.layout, start=1):
            blocks[str(i)] = _VGGBlock(c_in, c_out, stride, config.dropout)
            c_in, side = c_out, (side + stride - 1) // stride
        self.blocks = nn.ModuleDict(blocks)
        self.output = nn.Sequential(nn.Flatten(), nn.Linear(c_in * side * side, config.n_classes))

    def _steps(self):
        steps = []
        for key, block in self.blocks.items():
            steps.append((f"conv.{key}", block.conv))
            steps.append((f"block.{key}", nn.Sequential(block.bn, block.relu, block.dropout)))
        return steps + [("output", self.output)]

    def layer_names(self) -> list[str]:
        return ["input"] + [n for n, _ in self._steps()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _check_image(x, self.input_shape)
        for block in self.blocks.values():
            h = block(h)
        return self.output(h)

    def representations(self, x: torch.Tensor, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """``{name: activations}`` for every named layer (or the subset ``names``), in forward order."""
        return _representations(self, _check_image(x, self.input_shape), self._steps(), names)


def build_dlib(config: DlibClassifierConfig) -> DlibClassifier:
    return DlibClassifier(config)


def build_vgg(config: VGGConfig) -> VGGClassifier:
    return VGGClassifier(config)
