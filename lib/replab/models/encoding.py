"""Encoding a whole dataset with a trained VAE, in batches on the model's device."""
from __future__ import annotations

import torch

__all__ = ["encode", "sample_codes"]


def _as_float(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a tensor of images, got {type(x).__name__}")
    return x.float() / 255.0 if x.dtype == torch.uint8 else x


def _check_batch(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


@torch.no_grad()
def encode(model, x: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """The posterior parameters (μ(x), log σ²(x)) of q(z | x) for every row of ``x``, each (N, d), float64 on
    the CPU. uint8 images are scaled to [0, 1]; the batches run on the device of the model's parameters, in the
    model's current mode (call ``model.eval()`` first where that matters)."""
    _check_batch(batch_size)
    x = _as_float(x)
    dev = next(model.parameters()).device
    mus, logvars = [], []
    for start in range(0, x.shape[0], batch_size):
        mu, logvar = model.encode(x[start:start + batch_size].to(dev))
        mus.append(mu.double().cpu())
        logvars.append(logvar.double().cpu())
    if not mus:
        raise ValueError("x has no rows to encode")
    return torch.cat(mus), torch.cat(logvars)


@torch.no_grad()
def sample_codes(model, x: torch.Tensor, generator: torch.Generator, batch_size: int = 500) -> torch.Tensor:
    """One reparameterised draw z = μ + σ·ε ~ q(z | x) per row of ``x`` (Kingma & Welling 2014, §2.4), float64
    on the CPU. ε is drawn batch by batch from ``generator`` (on the model's device) in the model's precision,
    so one seed gives one set of codes for one batch size."""
    _check_batch(batch_size)
    x = _as_float(x)
    dev = next(model.parameters()).device
    out = []
    for start in range(0, x.shape[0], batch_size):
        mu, logvar = model.encode(x[start:start + batch_size].to(dev))
        eps = torch.randn(mu.shape, generator=generator, device=dev, dtype=mu.dtype)
        out.append((mu + torch.exp(0.5 * logvar) * eps).double().cpu())
    if not out:
        raise ValueError("x has no rows to encode")
    return torch.cat(out)
