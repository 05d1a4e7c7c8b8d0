"""Counter-based random numbers: noise that is a pure function of (member seed, step, draw, element).

A training run draws its sampling noise (the reparameterisation ε, the MMD prior sample, importance samples),
its dropout masks and its augmentation offsets from a :class:`HashNoise` made for that step. Each value is a
hash of four integers: the run's seed, the step, the index of the draw within the step and the element's
position, so

* a run that resumes at step t draws exactly what an uninterrupted run draws (no generator state to keep);
* many runs trained together as one stacked model (``torch.func.vmap`` over their parameters) each draw their
  own noise, the noise of their solo run, in one vectorised call: the seed is a batched tensor under ``vmap`` and
  the rest of the computation is the same elementwise integer arithmetic;
* the numbers are the same on a CPU and on CUDA (integer arithmetic, then one rounding to float32).

The integer hash is PCG's output permutation applied as a hash (``pcg_hash`` of Jarzynski & Olano, "Hash
Functions for GPU Rendering", JCGT 2020), chained over the four inputs. Uniforms carry 23 random bits
(u ∈ (0, 1), never 0 or 1 in float32); normals are ``ndtri(u)`` (inverse-CDF), so |ε| ≤ 5.3.

Library code that draws noise takes a ``generator`` argument and calls :func:`randn` / :func:`rand`, which
accept either a ``torch.Generator`` (ordinary use, torch's own streams) or a :class:`HashNoise`. Layers that draw
while the model runs (dropout) ask :func:`current` for the noise of the step being trained, set by the training
engine with :func:`using`; outside training they fall back to torch's global stream.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib

import torch

__all__ = ["HashNoise", "pcg_hash", "seed_word", "unit_interval", "randn", "rand", "using", "current", "dropout"]

_M32 = 0xFFFFFFFF
_current: contextvars.ContextVar = contextvars.ContextVar("replab_noise", default=None)


def pcg_hash(x: torch.Tensor) -> torch.Tensor:
    """The 32-bit PCG hash of each element of the int64 tensor ``x`` (values in [0, 2³²)).

    Written in int64 arithmetic whose products stay below 2⁶³, so nothing overflows on any device.
    """
    state = (x * 747796405 + 2891336453) & _M32
    word = (((state >> ((state >> 28) + 4)) ^ state) * 277803737) & _M32
    return (word >> 22) ^ word


def _pcg_int(x: int) -> int:
    """:func:`pcg_hash` of one Python integer (the same arithmetic, for the constants of a draw)."""
    state = (x * 747796405 + 2891336453) & _M32
    word = (((state >> ((state >> 28) + 4)) ^ state) * 277803737) & _M32
    return (word >> 22) ^ word


@functools.lru_cache(maxsize=64)
def _hashed_positions(n: int, device: torch.device) -> torch.Tensor:
    """pcg_hash(0, 1, ..., n − 1): the same for every draw of n values, so computed once per size and device."""
    return pcg_hash(torch.arange(n, dtype=torch.int64, device=device))


def seed_word(seed: int, stream: str = "noise") -> int:
    """A 32-bit word standing for (``seed``, ``stream``): the key of a run's noise."""
    digest = hashlib.blake2b(f"{int(seed)}:{stream}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def unit_interval(bits: torch.Tensor) -> torch.Tensor:
    """Float32 values (2k + 1)·2⁻²⁴ from the top 23 of 32 random bits (k < 2²³): the midpoints of 2²³ equal
    cells of (0, 1). Every one is exact in float32 and lies in [2⁻²⁴, 1 − 2⁻²⁴], so ``ndtri`` of it is finite
    (|ε| ≤ 5.3); with 24 bits the top cell's midpoint 1 − 2⁻²⁵ would round to 1.0 in float32."""
    return ((bits >> 9) * 2 + 1).to(torch.float32) * 2.0 ** -24


class HashNoise:
    """The noise of one training step of one run (or, under ``vmap``, of each member of a stacked group).

    Parameters
    ----------
    key : :func:`seed_word` of the run, as an ``int``, or as an int64 tensor of shape () (under
        ``torch.func.vmap``, one key per member); both give the same values.
    step : the training step (an int).
    device : where the noise is made (default: the key's device).

    Successive draws of one step differ (a draw counter is part of each value's hash); the same sequence of
    draws at the same (key, step) gives the same values.
    """

    def __init__(self, key, step: int, device: torch.device | str | None = None):
        if isinstance(key, torch.Tensor):
            self.device = torch.device(device) if device is not None else key.device
        else:  # one run: the key's hashes are computed in Python, with no tensor operation
            key = int(key) & _M32
            self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.key, self.step, self.draws = key, int(step), 0

    def bits(self, shape) -> torch.Tensor:
        """32 random bits per element of ``shape`` (int64 values in [0, 2³²)); advances the draw counter."""
        shape = tuple(int(s) for s in shape)
        n = 1
        for s in shape:
            n *= s
        constant = _pcg_int((self.step * 0x9E3779B9 + _pcg_int(self.draws)) & _M32)
        self.draws += 1
        if isinstance(self.key, torch.Tensor):
            member = pcg_hash(self.key.to(torch.int64) ^ constant)
        else:
            member = _pcg_int(self.key ^ constant)
        return pcg_hash(_hashed_positions(n, self.device) ^ member).reshape(shape)

    def rand(self, shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Uniform values in (0, 1), 23 random bits each (see :func:`unit_interval`)."""
        return unit_interval(self.bits(shape)).to(dtype)

    def randn(self, shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Standard normal values, ``ndtri`` of :meth:`rand`."""
        return torch.special.ndtri(self.rand(shape)).to(dtype)

    def randint(self, high: int, shape) -> torch.Tensor:
        """Integers uniform in [0, ``high``) (int64)."""
        return (self.bits(shape) * int(high)) >> 32


def randn(shape, generator=None, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise of ``shape`` from ``generator``: a :class:`HashNoise`, a ``torch.Generator`` or
    None (torch's global stream)."""
    if isinstance(generator, HashNoise):
        return generator.randn(shape, dtype)
    return torch.randn(shape, generator=generator, device=device, dtype=dtype)


def rand(shape, generator=None, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Uniform noise in [0, 1) of ``shape`` from ``generator`` (see :func:`randn`)."""
    if isinstance(generator, HashNoise):
        return generator.rand(shape, dtype)
    return torch.rand(shape, generator=generator, device=device, dtype=dtype)


@contextlib.contextmanager
def using(noise: HashNoise | None):
    """Within the block, :func:`current` is ``noise`` (the training engine sets it around each step)."""
    token = _current.set(noise)
    try:
        yield noise
    finally:
        _current.reset(token)


def current() -> HashNoise | None:
    """The noise of the step being trained, or None outside the training engine."""
    return _current.get()


def dropout(x: torch.Tensor, p: float, training: bool, channelwise: bool = False) -> torch.Tensor:
    """Inverted dropout: zero each element (each channel of each example, with ``channelwise``, as
    ``Dropout2d``) with probability ``p`` and scale the rest by 1/(1 − p).

    Inside the training engine the mask comes from the step's :class:`HashNoise`; elsewhere this is
    ``torch.nn.functional.dropout`` / ``dropout2d``.
    """
    if not training or p == 0.0:
        return x
    noise = current()
    if noise is None:
        fn = torch.nn.functional.dropout2d if channelwise else torch.nn.functional.dropout
        return fn(x, p, training=True)
    shape = tuple(x.shape[:2]) + (1,) * (x.ndim - 2) if channelwise else tuple(x.shape)
    keep = noise.rand(shape) >= p
    return x * keep.to(x.dtype) / (1.0 - p)


class Dropout(torch.nn.Module):
    """:func:`dropout` as a layer (``channelwise=True`` drops whole feature maps, as ``nn.Dropout2d``)."""

    def __init__(self, p: float = 0.5, channelwise: bool = False):
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"p must lie in [0, 1), got {p!r}")
        self.p, self.channelwise = float(p), bool(channelwise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training, self.channelwise)

    def extra_repr(self) -> str:
        return f"p={self.p}, channelwise={self.channelwise}"
