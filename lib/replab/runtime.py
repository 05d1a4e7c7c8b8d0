"""Runtime helpers shared by every method: device choice, seeding and progress bars.

Every long loop in replab goes through :func:`progress`, so notebooks show a bar while tests stay quiet.
"""
from __future__ import annotations

import os
import random
from typing import Iterable, Optional, TypeVar

import numpy as np
import torch

T = TypeVar("T")

__all__ = ["get_device", "seed_everything", "progress", "quiet", "generator"]


def get_device(device: str | torch.device | None = "auto") -> torch.device:
    """Resolve ``device``: ``"auto"`` (or ``None``) is CUDA when present, else the CPU."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for but CUDA is not available; use device='auto'")
    return dev


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) and return a torch generator seeded with ``seed``.

    Same seed, same numbers: every stochastic method in replab also takes an explicit ``seed`` or generator,
    so results do not depend on what ran before.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return generator(seed)


def generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``."""
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def quiet() -> bool:
    """True when progress bars should be hidden: under pytest, or when ``REPLAB_QUIET`` is set to 1."""
    if os.environ.get("REPLAB_QUIET", "") not in ("", "0"):
        return True
    return "PYTEST_CURRENT_TEST" in os.environ


def progress(iterable: Optional[Iterable[T]] = None, desc: str | None = None, total: int | None = None,
             **kwargs) -> Iterable[T]:
    """A tqdm progress bar over ``iterable`` that is silent under tests (see :func:`quiet`)."""
    import warnings

    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        # In a kernel without ipywidgets, tqdm.auto falls back to the text bar and warns (with the path of its
        # own installation) on the page; the text bar is what is wanted there.
        warnings.simplefilter("ignore", TqdmWarning)
        from tqdm.auto import tqdm

    kwargs.setdefault("disable", quiet())
    kwargs.setdefault("leave", False)
    return tqdm(iterable, desc=desc, total=total, **kwargs)
