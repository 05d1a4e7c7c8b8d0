"""The image classifiers whose layers are inverted (Nash et al., 2019, Section 5.1, 5.2 and Appendix A).

``"conv"`` (Section 5.1): two convolution-ReLU-max-pool layers (kernel 5, no padding, pool 2), a fully connected
layer FC3 of 256 units, and a linear layer of logits; dropout after every hidden layer. 32 filters in both
convolutions for MNIST, 64 and 128 for SVHN and CIFAR-10.

The affNIST variants of Section 5.2: ``"global_pool"`` takes the global max over space of the CONV2 maps before
FC3; ``"fc"`` replaces CONV1 and CONV2 by fully connected layers of 2,048 units.

The representations are named CONV1, CONV2, FC3 and LOGITS (:meth:`Classifier.representations`); CONV1 and CONV2
are the pooled maps (C, h, w) of the convolutional nets and vectors for ``"fc"``. Inputs are images with values in
[0, 1] (floats) or 8-bit integers (divided by 255).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..noise import Dropout

__all__ = ["LAYERS", "ClassifierConfig", "Classifier", "to_float_images"]

LAYERS = ("CONV1", "CONV2", "FC3", "LOGITS")
VARIANTS = ("conv", "global_pool", "fc")


@dataclass(frozen=True)
class ClassifierConfig:
    """Hyper-parameters of :class:`Classifier` (paper values: MNIST ``conv_channels=(32, 32)``; SVHN/CIFAR
    ``(64, 128)``; ``fc_units=256``; ``hidden_units=2048`` for the ``"fc"`` net)."""

    image_shape: tuple = (1, 28, 28)
    n_classes: int = 10
    variant: str = "conv"
    conv_channels: tuple = (32, 32)
    fc_units: int = 256
    hidden_units: int = 2048
    dropout: float = 0.5

    def validate(self) -> "ClassifierConfig":
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if len(self.image_shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {self.image_shape}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.variant != "fc" and min(self.image_shape[1:]) < 16:
            raise ValueError(f"image_shape: the convolutional nets need images of at least 16×16 "
                             f"(two 5×5 convolutions and 2×2 poolings), got {self.image_shape}")
        return self


def to_float_images(x: torch.Tensor) -> torch.Tensor:
    """Images as floats in [0, 1]: 8-bit integer tensors are divided by 255, floats are kept."""
    x = torch.as_tensor(x)
    return x.float() / 255.0 if not torch.is_floating_point(x) else x


class Classifier(nn.Module):
    """The classifier of Section 5.1 or one of the affNIST variants; ``forward`` returns the logits."""

    def __init__(self, config: ClassifierConfig | None = None, **kwargs):
        super().__init__()
        if config is not None and kwargs:
            raise ValueError("pass either a config or keyword arguments, not both")
        cfg = (config or ClassifierConfig(**kwargs)).validate()
        self.config = cfg
        self.input_shape = tuple(cfg.image_shape)
        c, h, w = cfg.image_shape
        self.drop = Dropout(cfg.dropout)
        if cfg.variant == "fc":
            self.layer1 = nn.Linear(c * h * w, cfg.hidden_units)
            self.layer2 = nn.Linear(cfg.hidden_units, cfg.hidden_units)
            fc_in = cfg.hidden_units
            self.shapes = {"CONV1": (cfg.hidden_units,), "CONV2": (cfg.hidden_units,)}
        else:
            c1, c2 = cfg.conv_channels
            self.layer1 = nn.Conv2d(c, c1, 5)
            self.layer2 = nn.Conv2d(c1, c2, 5)
            h1, w1 = (h - 4) // 2, (w - 4) // 2
            h2, w2 = (h1 - 4) // 2, (w1 - 4) // 2
            self.shapes = {"CONV1": (c1, h1, w1), "CONV2": (c2, h2, w2)}
            fc_in = c2 if cfg.variant == "global_pool" else c2 * h2 * w2
        self.fc3 = nn.Linear(fc_in, cfg.fc_units)
        self.logits = nn.Linear(cfg.fc_units, cfg.n_classes)
        self.shapes.update({"FC3": (cfg.fc_units,), "LOGITS": (cfg.n_classes,)})

    def _check(self, x):
        x = to_float_images(x)
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(self.config.image_shape):
            raise ValueError(f"x: expected images of shape (B, {', '.join(map(str, self.config.image_shape))}), "
                             f"got {tuple(x.shape)}")
        return x

    def _layers(self, x):
        """Yield (name, representation) in order; dropout acts between layers (in training mode only)."""
        x = self._check(x)
        if self.config.variant == "fc":
            h1 = F.relu(self.layer1(x.flatten(1)))
            yield "CONV1", h1
            h2 = F.relu(self.layer2(self.drop(h1)))
            yield "CONV2", h2
            flat = h2
        else:
            h1 = F.max_pool2d(F.relu(self.layer1(x)), 2)
            yield "CONV1", h1
            h2 = F.max_pool2d(F.relu(self.layer2(self.drop(h1))), 2)
            yield "CONV2", h2
            flat = h2.amax(dim=(2, 3)) if self.config.variant == "global_pool" else h2.flatten(1)
        h3 = F.relu(self.fc3(self.drop(flat)))
        yield "FC3", h3
        yield "LOGITS", self.logits(self.drop(h3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes) of images (B, C, H, W)."""
        for name, h in self._layers(x):
            pass
        return h

    def representations(self, x: torch.Tensor, layers=LAYERS) -> dict:
        """The named representations {name: tensor (B, *shape)} of images ``x``, computed in one pass.

        Call in eval mode (``model.eval()``) for the deterministic representations the paper inverts."""
        layers = (layers,) if isinstance(layers, str) else tuple(layers)
        unknown = [name for name in layers if name not in LAYERS]
        if unknown:
            raise ValueError(f"layers: unknown name(s) {unknown}; the layers are {LAYERS}")
        out = {}
        for name, h in self._layers(x):
            if name in layers:
                out[name] = h
            if len(out) == len(layers):
                break
        return out

    @torch.no_grad()
    def extract(self, images: torch.Tensor, layer: str, batch_size: int = 1000) -> torch.Tensor:
        """One layer's representation of many images, in eval mode and batches, on the model's device (CPU out)."""
        was_training = self.training
        self.eval()
        dev = next(self.parameters()).device
        try:
            parts = [self.representations(images[i:i + batch_size].to(dev), layer)[layer].float().cpu()
                     for i in range(0, len(images), batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(parts)
