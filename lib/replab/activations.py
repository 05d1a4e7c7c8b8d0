"""Activation capture: the named layers' activations of any ``nn.Module`` over a dataset.

Shared by the similarity pages (Bonheme & Grześ 2022, 2023), the DP-GMM fingerprints and the probes.
:func:`capture` runs the model in eval mode without gradients, collects each named layer through a forward hook
(or through the model's own ``representations(x) -> dict`` when it has one, as the VAE zoo does), flattens conv
maps (or global-average-pools them with ``reduce="gap"``), and returns ``{name: tensor of shape (n, features)}``
as float32 on the CPU, batch by batch, so the device only ever holds one batch.

With a ``cache_key`` the result is stored in the artifact cache. Activations larger than ``stream_mb`` stream to
it while they are captured: past that size every batch is appended to one raw float32 file per layer, and the
finished set (a folder ``activations/<key>/`` with a ``stream.json`` index, moved into place atomically) is
returned, and later reloaded, as memory-mapped tensors, so RAM never holds the whole set.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from torch import nn

from .cache import ARRAY_INDEX, ArtifactCache, map_array_folder
from .runtime import get_device, progress

__all__ = ["capture", "reduce_activation", "noise_seed", "REDUCTIONS"]

REDUCTIONS = ("flatten", "gap")


def reduce_activation(t: torch.Tensor, reduce: str = "flatten", name: str = "layer") -> torch.Tensor:
    """Shape (B, ...) to (B, features): ``"flatten"``, or ``"gap"`` (mean over the spatial axes of (B, C, ...))."""
    if not torch.is_tensor(t):
        raise ValueError(f"layer {name!r}: produced a {type(t).__name__}, not a tensor")
    if t.ndim == 0:
        raise ValueError(f"layer {name!r}: produced a scalar, not one activation vector per example")
    if t.ndim == 1:
        return t[:, None]
    if reduce == "gap" and t.ndim > 2:
        return t.flatten(2).mean(dim=2)
    return t.reshape(t.shape[0], -1)


def noise_seed(model: nn.Module) -> int:
    """A seed that is a function of the model's weights: the same model always draws the same noise for its
    sampled layer, two different models independent noise (as two separately run models would; one shared seed
    would make two collapsed posteriors, both N(0, I), look identical)."""
    h = hashlib.blake2b(digest_size=8)
    for t in model.state_dict().values():
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return int.from_bytes(h.digest(), "little") & ((1 << 63) - 1)


def _first_tensor(out: Any) -> Any:
    # Modules such as nn.LSTM return tuples; their first tensor is the representation.
    if isinstance(out, (tuple, list)):
        for item in out:
            if torch.is_tensor(item):
                return item
    return out


def _batches(data, batch_size: int) -> Iterable[torch.Tensor]:
    """Yield input batches from a tensor, a Dataset, or an iterable of batches (the first item of tuples)."""
    if torch.is_tensor(data):
        for start in range(0, data.shape[0], batch_size):
            yield data[start:start + batch_size]
        return
    if isinstance(data, torch.utils.data.Dataset) and not isinstance(data, torch.utils.data.IterableDataset):
        data = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    for batch in data:
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        elif isinstance(batch, dict):
            batch = batch.get("x", batch.get("image", next(iter(batch.values()))))
        yield batch


def _resolve_modules(model: nn.Module, layers: Sequence[str]) -> dict[str, nn.Module]:
    out = {}
    for name in layers:
        try:
            out[name] = model.get_submodule(name)
        except AttributeError:
            known = [n for n, _ in model.named_modules() if n]
            raise ValueError(f"layers: model has no module named {name!r}; known modules: "
                             f"{', '.join(known[:30])}{' …' if len(known) > 30 else ''}") from None
    return out


def capture(model: nn.Module, data, layers: Sequence[str] | None = None, reduce: str = "flatten",
            batch_size: int = 256, device: str | torch.device = "auto", cache_key: Any = None,
            cache=None, stream_mb: float = 1024.0, seed: int | str | None = None) -> dict[str, torch.Tensor]:
    """Collect the activations of ``layers`` of ``model`` over ``data``.

    Parameters
    ----------
    model : nn.Module
        Put in eval mode for the pass (and restored afterwards). If it has a method
        ``representations(x) -> dict[str, Tensor]``, that is used and ``layers`` selects among its keys.
    data : tensor of shape (n, ...), a Dataset, or an iterable of batches (tensors or tuples whose first item is x)
    layers : names of modules (dotted, as ``model.get_submodule`` takes them), or keys of ``representations``;
        ``None`` means every representation the model exposes (required for a plain module).
    reduce : "flatten" or "gap" (global average pooling over spatial axes of conv maps)
    batch_size : batch size when ``data`` is a tensor or a Dataset
    device : "auto", "cpu" or "cuda": where the forward passes run (the model is moved there for the pass and back
        to its own device afterwards)
    cache_key : optional configuration (dataclass, dict) identifying the model and the data; when given, the result
        is stored in (and loaded from) the artifact cache under kind ``"activations"``.
    cache : optional :class:`replab.cache.ArtifactCache` (default: the shared one)
    stream_mb : with ``cache_key``: once the captured activations exceed this many MiB, the rest streams to the
        cache on disk and the result is memory-mapped (see the module docstring).
    seed : for a model whose ``representations`` takes a ``generator`` (a VAE's sampled layer): the seed of the
        generator (on ``device``) its noise is drawn from, batch after batch, so one call gives the same numbers
        every time; ``"weights"`` is :func:`noise_seed` of the model. ``None``: the global random stream.

    Returns
    -------
    dict name -> float32 CPU tensor of shape (n, features), in the order of ``layers``.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce: expected one of {REDUCTIONS}, got {reduce!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if isinstance(layers, str):
        layers = [layers]
    if not (isinstance(stream_mb, (int, float)) and stream_mb > 0):
        raise ValueError(f"stream_mb: expected a positive number of MiB, got {stream_mb!r}")
    if not (seed is None or seed == "weights" or (isinstance(seed, int) and not isinstance(seed, bool))):
        raise ValueError(f"seed: expected an integer, 'weights' or None, got {seed!r}")
    if cache_key is not None:
        store = cache if cache is not None else ArtifactCache()
        key = {"config": cache_key, "layers": list(layers) if layers is not None else None, "reduce": reduce}
        if seed is not None:
            key["seed"] = seed
        # Under the key's lock: a second process asking for the same capture waits, then loads it.
        with store.lock(KIND, key):
            stored = _load_streamed(store, key)
            if stored is None:
                stored = store.load(KIND, key)
            if stored is not None:
                return stored
            spill = _Spill(store.root / KIND, store.key(KIND, key), stream_mb)
            out = _capture(model, data, layers, reduce, batch_size, device, spill, seed)
            if spill.active:
                return out
            store.save(KIND, key, out)
            return out
    return _capture(model, data, layers, reduce, batch_size, device, seed=seed)


KIND = "activations"


class _Spill:
    """Where a capture goes once it outgrows memory: one raw float32 file per layer, appended batch by batch in a
    hidden folder that is renamed to ``<folder>/<key>`` when complete (a crash leaves no half-written entry)."""

    def __init__(self, folder: Path, key: str, limit_mb: float):
        self.folder, self.key, self.limit = Path(folder), key, limit_mb * 2**20
        self.active = False
        self.tmp: Path | None = None
        self.files: dict[str, Any] = {}
        self.shapes: dict[str, list[int]] = {}

    def should_start(self, held_bytes: int) -> bool:
        return not self.active and held_bytes > self.limit

    def start(self, chunks: dict[str, list[torch.Tensor]]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.key}.", suffix=".partial", dir=self.folder))
        self.active = True
        for name, parts in chunks.items():
            for part in parts:
                self.append(name, part)
            parts.clear()

    def append(self, name: str, t: torch.Tensor) -> None:
        if name not in self.files:
            self.files[name] = open(self.tmp / f"{len(self.files)}.f32", "wb")
            self.shapes[name] = [0, int(t.shape[1])]
        self.files[name].write(t.contiguous().numpy().tobytes())
        self.shapes[name][0] += int(t.shape[0])

    def finish(self) -> dict[str, torch.Tensor]:
        layers = []
        for i, (name, fh) in enumerate(self.files.items()):
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            layers.append({"name": name, "file": f"{i}.f32", "shape": self.shapes[name]})
        (self.tmp / ARRAY_INDEX).write_text(json.dumps({"layers": layers}, indent=1))
        final = self.folder / self.key
        if final.exists():
            shutil.rmtree(final)
        os.replace(self.tmp, final)
        return map_array_folder(final)

    def abandon(self) -> None:
        for fh in self.files.values():
            fh.close()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _load_streamed(store, key) -> dict[str, torch.Tensor] | None:
    folder = store.root / KIND / store.key(KIND, key)
    if not folder.is_dir():
        return None
    out = map_array_folder(folder)
    if out is None:  # a damaged entry (a file truncated or removed by hand): drop it and recompute
        shutil.rmtree(folder, ignore_errors=True)
    return out


def _model_devices(model: nn.Module) -> set[torch.device]:
    return {t.device for t in list(model.parameters()) + list(model.buffers())}


def _noise(model: nn.Module, seed, dev) -> dict:
    """The keyword arguments that make ``model.representations`` draw its noise from ``seed`` ({} for None)."""
    if seed is None:
        return {}
    if "generator" not in inspect.signature(model.representations).parameters:
        return {}  # a deterministic model: nothing to seed
    return {"generator": torch.Generator(device=dev).manual_seed(noise_seed(model) if seed == "weights" else seed)}


def _capture(model, data, layers, reduce, batch_size, device, spill: _Spill | None = None, seed=None
             ) -> dict[str, torch.Tensor]:
    dev = get_device(device)
    # The batches go to ``dev``; a model held on one other device is moved there for the pass and moved back after
    # (a model split over several devices is left where it is).
    held = _model_devices(model)
    home = next(iter(held)) if len(held) == 1 else None
    move = home is not None and home != dev
    own = callable(getattr(model, "representations", None))
    if layers is None and not own:
        raise ValueError("layers: give the module names to capture (this model has no representations() method)")
    modules = {} if own else _resolve_modules(model, layers)
    chunks: dict[str, list[torch.Tensor]] = {}
    current: dict[str, torch.Tensor] = {}
    held_bytes = 0  # activations held in memory

    def hook_for(name):
        def hook(_module, _inputs, output):
            current[name] = _first_tensor(output)
        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in modules.items()]
    was_training = model.training
    model.eval()
    if move:
        model.to(dev)
    noise = _noise(model, seed, dev) if own else {}
    try:
        with torch.no_grad():
            for batch in progress(_batches(data, batch_size), desc="capture"):
                batch = torch.as_tensor(batch).to(dev)
                current.clear()
                if own:
                    reps = model.representations(batch, **noise)
                    names = list(reps) if layers is None else list(layers)
                    missing = [k for k in names if k not in reps]
                    if missing:
                        raise ValueError(f"layers: model.representations() has no {missing}; it has {list(reps)}")
                    current.update({k: reps[k] for k in names})
                else:
                    model(batch)
                    missing = [k for k in modules if k not in current]
                    if missing:
                        raise ValueError(f"layers: no activation was recorded for {missing}: "
                                         "these modules are not called by the model's forward pass")
                for name in (names if own else modules):
                    t = reduce_activation(current[name], reduce, name).detach().to("cpu", torch.float32)
                    if spill is not None and spill.active:
                        spill.append(name, t)
                    else:
                        chunks.setdefault(name, []).append(t)
                        held_bytes += t.numel() * 4
                if spill is not None and spill.should_start(held_bytes):
                    spill.start(chunks)
        if spill is not None and spill.active:
            return spill.finish()
    except BaseException:
        if spill is not None:
            spill.abandon()
        raise
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        if move:
            model.to(home)
    if not chunks:
        raise ValueError("data: no batch was given")
    return {name: torch.cat(parts) for name, parts in chunks.items()}
