"""Named layers of a VAE: the module behind a representation name, and freezing, resetting and retraining a
chosen set of them (the transfer runs of Bonheme & Grześ 2023, ``bin/transfer`` of their code)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["layer_module", "reset_layers", "prepare_transfer"]


def layer_module(model, name: str) -> nn.Module:
    """The module behind a representation name (``encoder.3``, ``mean``, ``variance``, ``decoder.1``, ``output``)."""
    head, _, key = name.partition(".")
    try:
        if head in ("encoder", "decoder") and key:
            return getattr(model, head)[key]
        if not key and head in ("mean", "variance", "output"):
            return getattr(model, head)
    except (KeyError, AttributeError):
        pass
    known = [n for n in model.layer_names() if n not in ("input", "sampled")] if hasattr(model, "layer_names") else []
    raise ValueError(f"layer: {name!r} is not a trainable layer of this model; layers: {known}")


def reset_layers(model, names: Sequence[str], seed: int = 0) -> None:
    """Re-initialise the layers ``names`` in place with PyTorch's default initialisation, seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in names:
            for m in layer_module(model, name).modules():
                if hasattr(m, "reset_parameters") and any(True for _ in m.parameters(False)):
                    m.reset_parameters()


def prepare_transfer(model, layers: Sequence[str], reset: bool = True, legacy_freeze_when_not_reset: bool = False,
                     seed: int = 0) -> list[nn.Parameter]:
    """Freeze every parameter except those of ``layers``, which are re-initialised when ``reset``; return the
    trainable parameters.

    ``legacy_freeze_when_not_reset=True`` reproduces ``bin/transfer::prepare_layers`` of the public code, which
    only unfreezes a layer when it is also reset: with ``reset=False`` everything is frozen and fine-tuning
    trains nothing."""
    for name in layers:
        layer_module(model, name)  # validate every name before touching the model
    for p in model.parameters():
        p.requires_grad_(False)
    if reset:
        reset_layers(model, layers, seed)
    if reset or not legacy_freeze_when_not_reset:
        for name in layers:
            for p in layer_module(model, name).parameters():
                p.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]
