"""The MSE inversion baseline (Nash et al., 2019, Eq. 3; Dosovitskiy & Brox, 2016): an up-convolutional decoder.

``f(h)`` maps a representation (a vector, or a spatial map (C, h, w)) to an image with values in [0, 1] and is
trained to minimise E‖x − f(h)‖². A vector is mapped by a linear layer to a ``width``-channel map at a quarter of
the image size; a spatial map is resized to that size and mixed by a 3×3 convolution. Two stride-2 transposed
convolutions then double the size twice, and a 3×3 convolution with a sigmoid gives the image.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["MSEDecoder", "MSEDecoderConfig"]


@dataclass(frozen=True)
class MSEDecoderConfig:
    """Hyper-parameters of :class:`MSEDecoder`: the representation's shape, the images' shape, the width."""

    context_shape: tuple
    image_shape: tuple = (1, 28, 28)
    width: int = 64


class MSEDecoder(nn.Module):
    """Up-convolutional decoder from a representation of shape ``context_shape`` to images ``image_shape``
    (``MSEDecoder(MSEDecoderConfig(...))`` also builds it, as the training engine does)."""

    def __init__(self, context_shape: tuple | MSEDecoderConfig, image_shape: tuple = (1, 28, 28), width: int = 64):
        super().__init__()
        if isinstance(context_shape, MSEDecoderConfig):
            context_shape, image_shape, width = (context_shape.context_shape, context_shape.image_shape,
                                                 context_shape.width)
        if len(context_shape) not in (1, 3):
            raise ValueError(f"context_shape must be (D,) or (C, h, w), got {context_shape}")
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {image_shape}")
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.context_shape, self.image_shape = tuple(context_shape), tuple(image_shape)
        self.config = MSEDecoderConfig(self.context_shape, self.image_shape, int(width))
        self.input_shape = self.image_shape  # the images of its training data
        c, h, w = image_shape
        self.base = ((h + 3) // 4, (w + 3) // 4)
        if len(context_shape) == 1:
            self.stem = nn.Linear(context_shape[0], width * self.base[0] * self.base[1])
        else:
            self.stem = nn.Conv2d(context_shape[0], width, 3, padding=1)
        self.width = width
        self.up1 = nn.ConvTranspose2d(width, width, 4, stride=2, padding=1)
        self.up2 = nn.ConvTranspose2d(width, width // 2 or 1, 4, stride=2, padding=1)
        self.head = nn.Conv2d(width // 2 or 1, c, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Reconstructions (B, C, H, W) in [0, 1] of representations ``h`` (B, *context_shape)."""
        if tuple(h.shape[1:]) != self.context_shape:
            raise ValueError(f"h: expected shape (B, {', '.join(map(str, self.context_shape))}), "
                             f"got {tuple(h.shape)}")
        h = h.float()
        if h.ndim == 2:
            z = self.stem(h).view(-1, self.width, *self.base)
        else:
            z = self.stem(F.interpolate(h, size=self.base, mode="bilinear", align_corners=False))
        z = F.relu(self.up2(F.relu(self.up1(F.relu(z)))))
        out = self.head(z)
        if tuple(out.shape[2:]) != tuple(self.image_shape[1:]):
            out = F.interpolate(out, size=self.image_shape[1:], mode="bilinear", align_corners=False)
        return torch.sigmoid(out)

    @torch.no_grad()
    def reconstruct(self, h: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Reconstructions in eval mode, in batches, returned on the CPU."""
        was_training = self.training
        self.eval()
        dev = next(self.parameters()).device
        try:
            return torch.cat([self(h[i:i + batch_size].to(dev)).cpu() for i in range(0, len(h), batch_size)])
        finally:
            self.train(was_training)
