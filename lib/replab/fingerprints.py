"""Kernel fingerprints (Jamroż et al. 2020, Section 4, Eq. 2): one point per convolution kernel.

A kernel's fingerprint is its spatially average-pooled response to each image of a fixed sequence
``x_1 … x_M``: ``f_k = (mean_{h,w} (W_k * x_1)[h, w], …, mean_{h,w} (W_k * x_M)[h, w])``. As in the public code
(reference notes §1.3), the response is taken at the convolution's output, *before* BatchNorm and ReLU, with the
network in eval mode. The fingerprints of the same layer of ``n`` networks trained from different seeds are pooled,
so a layer of ``C`` kernels gives ``n·C`` points in ``R^M``, and reduced to ``d`` dimensions by projecting onto the
top ``d`` right singular vectors of the (uncentred, as the public code; centring is an option) matrix whose rows
are kernels. Layers are compared at the same ``d``. The points are what the DP-GMM of :mod:`replab.dpgmm` models.

Used by the book pages ``jamroz2020/01-memorisation`` and ``02-regularisation``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from .activations import capture

__all__ = ["conv_layer_names", "kernel_responses", "pool_networks", "svd_reduce", "fingerprints",
           "PAPER_LAYER_DIMS"]

# Per-layer SVD dimensions of the public code (``ld_8.json``, ``ld_11.json``), by network depth.
PAPER_LAYER_DIMS = {8: (10, 30, 40, 60, 75, 81, 72, 70), 11: (10, 20, 30, 40, 45, 60, 75, 81, 75, 72, 70)}


def conv_layer_names(model: nn.Module) -> list[str]:
    """The names under which :func:`kernel_responses` reads each convolution's output, in forward order.

    Models of the zoo that expose ``layer_names()`` name them ``conv.i`` (the convolution's own output); for any
    other module these are the dotted paths of its ``nn.Conv2d`` submodules.
    """
    if callable(getattr(model, "layer_names", None)):
        names = [n for n in model.layer_names() if n.startswith("conv.")]
        if names:
            return names
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not names:
        raise ValueError("model: it has no convolution layer to take fingerprints of")
    return names


def kernel_responses(model: nn.Module, images: torch.Tensor, layers: Sequence[str] | None = None,
                     batch_size: int = 256, device="auto") -> dict[str, torch.Tensor]:
    """Each kernel's spatially averaged response to each image (Eq. 2): ``{layer: (M, C) float64}``.

    ``images`` is the fixed sequence, a float tensor of shape (M, C_in, H, W) already normalised as in training.
    The model is run in eval mode (BatchNorm uses its running statistics, dropout is off).
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images: expected a tensor of shape (M, C, H, W), got {got}")
    if not torch.isfinite(images).all():
        raise ValueError("images: contains NaN or infinite values")
    names = list(layers) if layers is not None else conv_layer_names(model)
    out = capture(model, images.float(), layers=names, reduce="gap", batch_size=batch_size, device=device)
    return {name: out[name].double() for name in names}


def pool_networks(responses: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack the kernels of ``n`` networks as rows: (M, C_i) matrices → one (Σ C_i, M) matrix.

    Row ``j`` of network ``i``'s block is kernel ``j`` of network ``i`` (``hstack`` then transpose, as the public
    code's ``--agg_mode aggregate``).
    """
    mats = [torch.as_tensor(r) for r in responses]
    if not mats:
        raise ValueError("responses: expected at least one network's responses")
    for i, m in enumerate(mats):
        if m.ndim != 2:
            raise ValueError(f"responses[{i}]: expected shape (M images, C kernels), got {tuple(m.shape)}")
    m0 = mats[0].shape[0]
    bad = [i for i, m in enumerate(mats) if m.shape[0] != m0]
    if bad:
        raise ValueError(f"responses: every network must see the same {m0} images; networks {bad} saw "
                         f"{[mats[i].shape[0] for i in bad]}")
    return torch.cat([m.to(torch.float64) for m in mats], dim=1).T.contiguous()


def svd_reduce(x: torch.Tensor, d: int, center: bool = False) -> torch.Tensor:
    """Project the rows of ``x`` (K kernels × M images) onto its top ``d`` right singular vectors: (K, d).

    ``center=False`` is the public code's ``X @ Vt[:d].T`` on the raw matrix (not PCA, reference notes §1.6 item
    5); ``center=True`` subtracts the mean row first, which is PCA. Each output column is defined up to its sign,
    which no quantity of the DP-GMM depends on.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.ndim != 2:
        raise ValueError(f"x: expected a matrix (kernels × images), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x: contains NaN or infinite values")
    if not (isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= min(x.shape)):
        raise ValueError(f"d: expected an integer in [1, min(K, M) = {min(x.shape)}], got {d!r}")
    if center:
        x = x - x.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    return x @ vh[:d].T


def fingerprints(models: Sequence[nn.Module], images: torch.Tensor, d: int | Mapping[str, int],
                 layers: Sequence[str] | None = None, center: bool = False, batch_size: int = 256,
                 device="auto") -> dict[str, torch.Tensor]:
    """Kernel fingerprints of ``n`` networks pooled per layer and reduced by SVD: ``{layer: (n·C, d) float64}``.

    ``d`` is one dimension for every layer (how layers are compared) or a mapping ``{layer: d}``; every network
    must have the same layers.
    """
    models = list(models)
    if not models:
        raise ValueError("models: expected at least one network")
    names = list(layers) if layers is not None else conv_layer_names(models[0])
    per_net = [kernel_responses(m, images, names, batch_size, device) for m in models]
    out = {}
    for name in names:
        dim = d[name] if isinstance(d, Mapping) else d
        out[name] = svd_reduce(pool_networks([r[name] for r in per_net]), dim, center)
    return out
