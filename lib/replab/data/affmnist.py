"""affMNIST-style digits: MNIST-10k digits under random affine maps on a 40×40 canvas, as affNIST does.

Each digit (28×28, centred on the canvas) gets ``A = R(rotation) · [[1, shear], [0, 1]] · scale`` about its centre,
rotation uniform in ±20°, shear in ±0.2, scale in 0.8..1.2, then a translation drawn uniformly among those that
keep the transformed bounding box of its ink inside the canvas. The parameters are drawn once for all 10,000
digits from ``seed`` (so a digit keeps its transform in every split) and exposed as factors:
``rotation`` (degrees, clockwise on screen), ``shear``, ``scale``, ``translate_x``, ``translate_y`` (pixels, rightwards and downwards
from the canvas centre). Pixels are bilinearly resampled and rounded to uint8.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from . import mnist10k
from ._base import ImageDataset, check_split

FACTOR_NAMES = ("rotation", "shear", "scale", "translate_x", "translate_y")
CANVAS = 40
DIGIT = 28


def linear_maps(rotation_deg: torch.Tensor, shear: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """(B, 2, 2) maps in pixel coordinates (x right, y down): rotation · shear · scale."""
    t = torch.deg2rad(rotation_deg.double())
    cos, sin = torch.cos(t), torch.sin(t)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shr = torch.eye(2, dtype=torch.float64).repeat(len(t), 1, 1)
    shr[:, 0, 1] = shear.double()
    return rot @ shr * scale.double()[:, None, None]


def _ink_box(images: np.ndarray) -> np.ndarray:
    """(B, 4, 2) corners of each digit's ink bounding box, pixel-edge coordinates relative to the digit centre."""
    rows, cols = images.any(axis=2), images.any(axis=1)
    r0, r1 = rows.argmax(1), DIGIT - rows[:, ::-1].argmax(1)
    c0, c1 = cols.argmax(1), DIGIT - cols[:, ::-1].argmax(1)
    half = DIGIT / 2
    return np.stack([np.stack([c0, r0], -1), np.stack([c1, r0], -1), np.stack([c0, r1], -1),
                     np.stack([c1, r1], -1)], 1).astype(np.float64) - half


def draw_parameters(images: np.ndarray, seed: int = 0, max_rotation: float = 20.0, max_shear: float = 0.2,
                    scale_range: tuple[float, float] = (0.8, 1.2)) -> torch.Tensor:
    """(B, 5) factors for each digit, the translation keeping the transformed ink box inside the canvas."""
    rng = np.random.default_rng(seed)
    n = len(images)
    rot = rng.uniform(-max_rotation, max_rotation, n)
    shear = rng.uniform(-max_shear, max_shear, n)
    scale = rng.uniform(scale_range[0], scale_range[1], n)
    u = rng.uniform(0.0, 1.0, (n, 2))
    maps = linear_maps(torch.from_numpy(rot), torch.from_numpy(shear), torch.from_numpy(scale)).numpy()
    corners = np.einsum("bij,bkj->bki", maps, _ink_box(images))
    lo = -CANVAS / 2 - corners.min(1)   # smallest shift keeping the box's left/top edge in the canvas
    hi = CANVAS / 2 - corners.max(1)
    shift = lo + u * np.maximum(hi - lo, 0.0)
    return torch.from_numpy(np.column_stack([rot, shear, scale, shift])).float()


def transform(images: np.ndarray, factors: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    """Warp (B, 28, 28) uint8 digits by their factors onto (B, 1, 40, 40) uint8 canvases."""
    c = torch.arange(CANVAS, dtype=torch.float64) + 0.5 - CANVAS / 2
    ys, xs = torch.meshgrid(c, c, indexing="ij")
    centres = torch.stack([xs, ys], -1).reshape(1, -1, 2)
    out = torch.empty(len(images), 1, CANVAS, CANVAS, dtype=torch.uint8)
    for start in range(0, len(images), chunk):
        f = factors[start:start + chunk].double()
        inv = torch.linalg.inv(linear_maps(f[:, 0], f[:, 1], f[:, 2]))
        q = torch.einsum("bij,bpj->bpi", inv, centres - f[:, None, 3:5]) / (DIGIT / 2)  # align_corners=False
        src = torch.from_numpy(np.ascontiguousarray(images[start:start + chunk])).float()[:, None]
        warped = F.grid_sample(src, q.reshape(-1, CANVAS, CANVAS, 2).float(), mode="bilinear",
                               padding_mode="zeros", align_corners=False)
        out[start:start + chunk] = warped.round().clamp(0, 255).to(torch.uint8)
    return out


@functools.lru_cache(maxsize=8)
def _warped(path: str, stamp: tuple[int, int], seed: int, split: str) -> tuple[torch.Tensor, torch.Tensor,
                                                                                torch.Tensor]:
    """The warped digits of one source file (``stamp``: its modification time and size, so that a replaced file
    is read again), seed and split (cached; parameters drawn for all 10,000)."""
    digits, labels, is_test = mnist10k.read(path, "affmnist")
    factors = draw_parameters(digits, seed)
    keep = np.ones(len(digits), bool) if split == "all" else (is_test if split == "test" else ~is_test)
    return transform(digits[keep], factors[torch.from_numpy(keep)]), torch.from_numpy(labels[keep]), \
        factors[torch.from_numpy(keep)]


def load(split: str = "train", root=None, seed: int = 0) -> ImageDataset:
    """affMNIST of the MNIST-10k ``split``; ``seed`` fixes every digit's transform."""
    check_split(split)
    path = mnist10k.locate(root)
    stat = path.stat()
    images, labels, factors = _warped(str(path), (stat.st_mtime_ns, stat.st_size), int(seed), split)
    # clones, so callers never write into the cached tensors
    return ImageDataset(images.clone(), labels=labels.clone(), factors=factors.clone(), factor_names=FACTOR_NAMES,
                        name="affmnist")
