"""All models against all models: every layer of every model with every layer of every other model, for the grids
of Bonheme & Grześ (2022, 2023), who computed about 470 million CKA and Procrustes scores.

:func:`cka_matrix` compares two models and forms each layer's Gram matrix at every call, so a grid of M models
called pair by pair forms each Gram M - 1 times. :func:`similarity_grid` reduces each (model, layer) once per metric
and gets every score from products of the reductions:

* linear, debiased and RBF CKA, Gram route: the centred (or U-centred) n×n Gram of each layer, scaled to unit
  Frobenius norm; a block of scores is one float64 product ``G_I G_Jᵀ`` of stacked flattened Grams (Eq. 2 of
  Bonheme & Grześ 2023 for the linear kernel). Linear and debiased CKA take the feature route instead when the
  layers are narrow (``Σ p_a·p_b < n·Σ (p_a + p_b)`` over the model pairs, p the models' total widths: the rule
  of :func:`cka_matrix`): the centred features, and ``‖XᵀY‖²_F`` from one product of concatenated features.
* Procrustes: each layer's factor (:func:`replab.similarity.procrustes.procrustes_factor`); each pair is the
  nuclear norm of a product of two factors.

The (model, layer) items are cut into blocks whose reductions fit in half of ``memory_mb``; a *tile* is the scores
of one block against another. When every reduction fits in the budget they stay in memory; otherwise each block's
reductions are formed once, written to disk and read back by the tiles that need them. With ``checkpoint`` (a
folder) every finished tile is written atomically there, and so are the on-disk reductions until their metric is
finished, so a run that is killed resumes without recomputing finished tiles or reduced blocks (the folder records
the run: activations' digests and settings; another run is refused).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..cache import atomic_torch_save, atomic_write_bytes, safe_torch_load
from ..runtime import get_device, progress
from .._validation import as_tensor_2d
from ._inputs import as_named_layers, prepare_scaled, rows_needed, times_pow2
from .cka import layer_gram
from .matrix import _linear_cka_features
from .procrustes import Factor, normalise, nuclear_norm_from_factors, procrustes_factor

__all__ = ["similarity_grid", "grid_table", "GRID_METRICS", "GRID_COLUMNS"]

GRID_METRICS = ("linear_cka", "debiased_cka", "rbf_cka", "procrustes")
GRID_COLUMNS = ["model_a", "layer_a", "model_b", "layer_b", "metric", "value"]


@dataclass(frozen=True)
class _Item:
    model: str
    layer: str
    source: object  # the caller's matrix (validated, not copied)
    width: int
    scale: int  # the power of two that prepare_scaled applies to it (0 unless its magnitude is extreme)


def _items(models, need_rows: tuple[int, str]) -> tuple[list[_Item], int]:
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models: expected a non-empty dict model name -> layers (a dict layer name -> matrix, "
                         f"or a list of matrices), got {type(models).__name__}")
    items, n = [], None
    for model, layers in models.items():
        for layer, x in as_named_layers(layers, f"model {str(model)!r}").items():
            name = f"layer {layer!r} of model {str(model)!r}"
            t, scale = prepare_scaled(x, name, *need_rows, dtype=None)  # every check before any work
            if n is not None and t.shape[0] != n:
                raise ValueError(f"{name}: has {t.shape[0]} examples but the other layers have {n}; every layer of "
                                 "every model must hold the same examples (rows)")
            n = t.shape[0]
            items.append(_Item(str(model), layer, x, t.shape[1], scale))
    return items, n


def _model_pairs(names: list[str], pairs, include_self: bool) -> list[tuple[str, str]]:
    if pairs is None:
        return [(a, b) for i, a in enumerate(names) for b in names[i if include_self else i + 1:]]
    out = []
    for pair in pairs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(f"pairs: expected (model_a, model_b) tuples, got {pair!r}")
        a, b = str(pair[0]), str(pair[1])
        for m in (a, b):
            if m not in names:
                raise ValueError(f"pairs: unknown model {m!r}; models: {names}")
        if (a, b) not in out and (b, a) not in out:
            out.append((a, b))
    if not out:
        raise ValueError("pairs: give at least one pair of models")
    return out


def _blocks(sizes: list[int], budget: int) -> list[list[int]]:
    """Consecutive items cut into blocks of at most ``budget`` bytes (an item larger than that is a block alone)."""
    blocks, current, used = [], [], 0
    for i, size in enumerate(sizes):
        if current and used + size > budget:
            blocks.append(current)
            current, used = [], 0
        current.append(i)
        used += size
    return blocks + [current]


class _Metric:
    """How one metric reduces an item (``reduce``), what that costs in memory (``nbytes``) and how a tile of scores
    comes from the reductions of two blocks (``tile``)."""

    def __init__(self, name: str, n: int, items: list[_Item], pairs_cost: tuple, sigma: float, precision: str,
                 device: torch.device):
        self.name, self.n, self.items, self.device = name, n, items, device
        self.debiased = name == "debiased_cka"
        self.sigma = sigma
        linear = name in ("linear_cka", "debiased_cka")
        self.mixed = precision == "mixed" and linear
        # cka_matrix's rule, summed over the model pairs: the feature route when the pairs' feature products cost
        # less than forming both models' Grams (so a grid of one pair takes cka_matrix's route, and its numbers)
        self.route = ("procrustes" if name == "procrustes" else
                      "features" if linear and pairs_cost[0] < n * pairs_cost[1] else "gram")

    def nbytes(self, item: _Item) -> int:
        n = self.n
        if self.route == "gram":
            return 8 * n * n
        if self.route == "features":
            return 8 * n * item.width
        return 8 * (n - 1) * min(item.width, n - 1)

    def _prepared(self, item: _Item, dtype) -> torch.Tensor:
        """The item's layer as :func:`prepare` returns it, without checking it again (``_items`` did)."""
        t = as_tensor_2d(item.source).to(self.device)
        if dtype is not None or not t.is_floating_point() or t.dtype in (torch.float16, torch.bfloat16):
            t = t.to(dtype or torch.float64)
        return times_pow2(t, item.scale).to(t.dtype) if item.scale else t

    def reduce(self, block: list[int]):
        """The reductions of a block's items: a stacked (k, n²) tensor of unit-norm Grams, a dict of layers, or a
        list of Procrustes factors."""
        if self.route == "features":
            return {i: self._prepared(self.items[i], torch.float64) for i in block}
        if self.route == "procrustes":
            factors = [procrustes_factor(normalise(self._prepared(self.items[i], torch.float64))) for i in block]
            for factor, i in zip(factors, block):  # the layer itself is not held: prepared again if ever needed
                factor.x = _Lazy(self, self.items[i])
            return factors
        n = self.n
        out = torch.empty(len(block), n * n, dtype=torch.float64, device=self.device)
        kernel = "rbf" if self.name == "rbf_cka" else "linear"
        work = torch.float32 if self.mixed else torch.float64
        for row, i in enumerate(block):
            it = self.items[i]
            layer_gram(self._prepared(it, None if self.mixed else torch.float64), kernel, self.sigma, self.debiased,
                       work, f"layer {it.layer!r} of model {it.model!r}", out=out[row].view(n, n))
        return out.div_(torch.linalg.vector_norm(out, dim=1, keepdim=True))

    def tile(self, ri, rj, bi: list[int], bj: list[int], needed: torch.Tensor) -> torch.Tensor:
        """Scores of block ``bi`` (rows) against ``bj`` (columns); NaN where ``needed`` is False (Procrustes)."""
        if self.route == "gram":
            return (ri @ rj.T).cpu()
        if self.route == "features":
            return _linear_cka_features(ri, rj, self.debiased, torch.float64).cpu()
        out = torch.full((len(bi), len(bj)), float("nan"), dtype=torch.float64)
        same = bi == bj
        for a in range(len(bi)):
            for b in range(a if same else 0, len(bj)):
                if needed[a, b]:
                    out[a, b] = float(nuclear_norm_from_factors(ri[a], rj[b]).clamp(0.0, 1.0))
                    if same:
                        out[b, a] = out[a, b]
        return out

    def save(self, reps, path: Path) -> None:
        if self.route == "procrustes":
            reps = {"f": [r.f.cpu() for r in reps], "error": [r.error for r in reps],
                    "gram_norm": [r.gram_norm for r in reps], "exact": [r.exact for r in reps]}
        atomic_torch_save(reps.cpu() if torch.is_tensor(reps) else reps, path)

    def load(self, path: Path, block: list[int]):
        obj = safe_torch_load(path, map_location=self.device)
        if self.route != "procrustes":
            return obj
        return [Factor(f, e, g, x, _Lazy(self, self.items[i]))
                for f, e, g, x, i in zip(obj["f"], obj["error"], obj["gram_norm"], obj["exact"], block)]


class _Lazy:
    """The normalised layer of an item, prepared when the exact Procrustes route first asks for it."""

    def __init__(self, metric: _Metric, item: _Item):
        self.metric, self.item = metric, item

    def __call__(self) -> torch.Tensor:
        return normalise(self.metric._prepared(self.item, torch.float64))


def _digest(x) -> str:
    t = torch.as_tensor(x).detach().cpu().contiguous()
    h = hashlib.blake2b(digest_size=16)
    h.update(str((t.dtype, tuple(t.shape))).encode())
    h.update(t.view(torch.uint8).numpy() if t.numel() else b"")
    return h.hexdigest()


def _compute_tile(metric: _Metric, ri, rj, bi, bj, needed) -> torch.Tensor:
    """One tile of scores (a module-level step, so that tests can interrupt a run between tiles)."""
    return metric.tile(ri, rj, bi, bj, needed)


def similarity_grid(models: Mapping, metrics: Sequence[str] = GRID_METRICS, pairs: Sequence | None = None,
                    include_self: bool = True, sigma: float = 0.8, device: str | torch.device = "auto",
                    memory_mb: float = 4096, checkpoint: str | Path | None = None,
                    precision: str = "mixed") -> pd.DataFrame:
    """Every requested score for every pair of layers of every pair of models, as a tidy table.

    Parameters
    ----------
    models : dict model name -> layers, each a dict layer name -> matrix of shape (n_examples, n_features) (or a
        list of matrices, named "0", "1", …); every layer of every model holds the same ``n_examples`` examples.
        Models may be snapshots of one training run.
    metrics : subset of ("linear_cka", "debiased_cka", "rbf_cka", "procrustes")
    pairs : list of (model_a, model_b), optional
        The model pairs to compare (default: every pair, and each model with itself when ``include_self``).
        A pair and its reverse are computed once, in the given orientation.
    sigma : RBF bandwidth as a multiple of the median pairwise distance (``rbf_cka``)
    device : "auto", "cpu" or "cuda"
    memory_mb : float
        The memory for the reductions of two blocks (a Gram is ``8n²`` bytes); more items than fit are cut into
        blocks and their reductions kept on disk.
    checkpoint : folder, optional
        Where finished tiles (and on-disk reductions) are kept, so a killed run resumes where it stopped.
    precision : {"mixed", "float64"}
        As in :func:`cka_matrix`: "mixed" forms the linear and debiased Grams in float32 from features centred in
        float64, with every sum in float64; RBF CKA and Procrustes always run in float64.

    Returns
    -------
    pandas.DataFrame with columns ``model_a, layer_a, model_b, layer_b, metric, value``: for each model pair, one
    row per (layer of a, layer of b) and metric; ``value`` equals ``cka_matrix`` on that pair of models (CKA
    debiased or not, Procrustes similarity). ``frame.attrs`` counts the tiles computed and loaded and the blocks
    reduced.
    """
    metrics = list(metrics)
    bad = [m for m in metrics if m not in GRID_METRICS]
    if bad or not metrics:
        raise ValueError(f"metrics: expected a non-empty subset of {GRID_METRICS}, got {metrics!r}")
    if precision not in ("mixed", "float64"):
        raise ValueError(f"precision: expected 'mixed' or 'float64', got {precision!r}")
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, (int, float)) or not 0 < memory_mb < float("inf"):
        raise ValueError(f"memory_mb: expected a finite positive number, got {memory_mb!r}")
    dev = get_device(device)
    items, n = _items(models, rows_needed("debiased_cka" in metrics))
    model_names = list(dict.fromkeys(it.model for it in items))
    mpairs = _model_pairs(model_names, pairs, include_self)
    used = {m for p in mpairs for m in p}
    items = [it for it in items if it.model in used]
    index = {m: [i for i, it in enumerate(items) if it.model == m] for m in used}
    widths = {m: sum(items[i].width for i in index[m]) for m in used}
    needed = torch.zeros(len(items), len(items), dtype=torch.bool)
    for a, b in mpairs:
        needed[np.ix_(index[a], index[b])] = True
        needed[np.ix_(index[b], index[a])] = True
    pairs_cost = (sum(widths[a] * widths[b] for a, b in mpairs), sum(widths[a] + widths[b] for a, b in mpairs))
    budget = int(memory_mb * 2**20)

    folder = Path(checkpoint) if checkpoint is not None else None
    if folder is not None:  # the run's record: settings and a digest of every layer's activations
        spec = {"n": n, "metrics": metrics, "sigma": sigma, "precision": precision, "pairs": mpairs,
                "memory_mb": memory_mb, "items": [[it.model, it.layer, it.width, _digest(it.source)] for it in items]}
        manifest = folder / "run.json"
        if manifest.is_file():
            try:
                previous = json.loads(manifest.read_text())
            except ValueError:
                previous = None
            if previous != json.loads(json.dumps(spec)):
                raise ValueError(f"checkpoint: {folder} holds the tiles of another run (other activations or "
                                 "settings); give another folder or remove it")
        else:
            atomic_write_bytes(manifest, json.dumps(spec, indent=1).encode())
    scratch = None
    stats = {"tiles_computed": 0, "tiles_loaded": 0, "blocks_reduced": 0}
    values = {}
    try:
        for name in metrics:
            metric = _Metric(name, n, items, pairs_cost, sigma, precision, dev)
            sizes = [metric.nbytes(it) for it in items]
            in_memory = sum(sizes) <= budget
            blocks = [list(range(len(items)))] if in_memory else _blocks(sizes, budget // 2)
            if not in_memory and folder is None and scratch is None:
                scratch = tempfile.TemporaryDirectory(prefix="replab-grid-")
            reps_dir = (folder or Path(scratch.name if scratch else ".")) / "reductions" / name
            held: dict[int, object] = {}

            def reps(b: int):
                if b in held:
                    return held[b]
                path = reps_dir / f"block-{b}.pt"
                obj = None
                if not in_memory and path.is_file():
                    try:
                        obj = metric.load(path, blocks[b])
                    except Exception:  # a damaged file: reduce the block again
                        obj = None
                if obj is None:
                    obj = metric.reduce(blocks[b])
                    stats["blocks_reduced"] += 1
                    if not in_memory:
                        metric.save(obj, path)
                if not in_memory:  # hold at most the row block and the column block
                    for k in [k for k in held if k not in (b, current_row)]:
                        del held[k]
                held[b] = obj
                return obj

            table = torch.full((len(items), len(items)), float("nan"), dtype=torch.float64)
            tiles = [(bi, bj) for bi in range(len(blocks)) for bj in range(bi, len(blocks))
                     if bool(needed[np.ix_(blocks[bi], blocks[bj])].any())]
            current_row = None
            for bi, bj in progress(tiles, desc=f"{name} tiles"):
                ii, jj = blocks[bi], blocks[bj]
                path = folder / "tiles" / f"{name}-{bi}-{bj}.pt" if folder is not None else None
                tile = None
                if path is not None and path.is_file():
                    try:
                        tile = safe_torch_load(path)["values"]
                        stats["tiles_loaded"] += 1
                    except Exception:  # a damaged tile is computed again
                        tile = None
                if tile is None:
                    current_row = bi
                    ri = reps(bi)
                    rj = reps(bj)
                    tile = _compute_tile(metric, ri, rj, ii, jj, needed[np.ix_(ii, jj)])
                    stats["tiles_computed"] += 1
                    if path is not None:
                        atomic_torch_save({"values": tile}, path)
                table[np.ix_(ii, jj)] = tile
                table[np.ix_(jj, ii)] = tile.T
            values[name] = table.numpy()
            if folder is not None:  # every tile of this metric is kept: its reductions are no longer needed
                shutil.rmtree(reps_dir, ignore_errors=True)
    finally:
        if scratch is not None:
            scratch.cleanup()
    frame = _tidy(items, index, mpairs, values)
    frame.attrs.update(stats)
    return frame


def _tidy(items: list[_Item], index: dict, mpairs: list, values: dict) -> pd.DataFrame:
    parts = []
    for name, table in values.items():
        for a, b in mpairs:
            ia, ib = index[a], index[b]
            la = np.repeat([items[i].layer for i in ia], len(ib))
            lb = np.tile([items[i].layer for i in ib], len(ia))
            parts.append(pd.DataFrame({"model_a": a, "layer_a": la, "model_b": b, "layer_b": lb, "metric": name,
                                       "value": table[np.ix_(ia, ib)].ravel()}))
    return pd.concat(parts, ignore_index=True)[GRID_COLUMNS]


def grid_table(frame: pd.DataFrame, model_a: str, model_b: str, metric: str) -> pd.DataFrame:
    """The layer × layer table of one model pair and metric from :func:`similarity_grid`'s frame (rows: layers of
    ``model_a`` in their order, columns: those of ``model_b``), transposed when the frame holds the pair reversed."""
    sel = frame[(frame.metric == metric) & (frame.model_a == model_a) & (frame.model_b == model_b)]
    flip = sel.empty
    if flip:
        sel = frame[(frame.metric == metric) & (frame.model_a == model_b) & (frame.model_b == model_a)]
    if sel.empty:
        raise ValueError(f"grid_table: no {metric!r} scores of models {model_a!r} and {model_b!r} in the frame")
    rows, cols = list(dict.fromkeys(sel.layer_a)), list(dict.fromkeys(sel.layer_b))
    table = pd.DataFrame(sel.value.to_numpy().reshape(len(rows), len(cols)), index=rows, columns=cols)
    return table.T if flip else table
