"""Layer × layer similarity of models: every named layer of one model against every layer of another (or of
itself at an earlier training step), with linear CKA and Procrustes similarity and their element-wise minimum.

Bonheme & Grześ (2022, 2023) compare VAEs this way; the tables here are theirs: rows the layers of the first
model, columns the layers of the second, the diagonal each layer against the same layer, and the diagonal's mean
over the parts of a VAE (the encoder's hidden layers, the mean and variance heads, the sampled layer, the decoder
with the output layer). The activations come from :func:`replab.activations.capture`, the sampled layer's noise
seeded by the model's weights, so a model always gives the same numbers and two models independent noise.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from .activations import capture
from .geometry import active_units
from .models import encode
from .similarity import grid_table, similarity_grid
from .similarity.cka import linear_cka
from .similarity.procrustes import procrustes_similarity

__all__ = ["METRICS", "ENCODER_PARTS", "representations", "similarity_tables", "mean_tables", "similarity",
           "model_similarity", "diagonal", "part_means", "diagonal_similarity", "snapshot_parts",
           "snapshot_similarity", "snapshot_summary",
           "first_step_above", "collapse_scores"]

METRICS = ("linear_cka", "procrustes")
ENCODER_PARTS = ("encoder", "latent", "sampled", "decoder")


def representations(model, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every named layer's activations over ``x``, the sampled layer's noise seeded by the model's weights."""
    return capture(model, x, batch_size=250, seed="weights")


def procrustes_rows(n: int, n_procrustes: int | None) -> np.ndarray | slice:
    """The examples Procrustes similarity is computed on when it may use only ``n_procrustes`` of ``n`` (its cost
    grows as n³): a fixed random subset, in increasing order, the same for every model and layer. Not the first
    rows: held-out samples come sorted by index, and the first rows of dSprites' index order are nearly all one
    shape."""
    if n_procrustes is None or n_procrustes >= n:
        return slice(None)
    if n_procrustes < 2:
        raise ValueError(f"n_procrustes: expected at least 2 examples, got {n_procrustes}")
    generator = torch.Generator().manual_seed(0)
    return torch.randperm(n, generator=generator)[:n_procrustes].sort().values.numpy()


def similarity_tables(reps: dict, pairs: Sequence[tuple], metrics: Sequence[str] = METRICS,
                      n_procrustes: int | None = None) -> dict[tuple, dict[str, pd.DataFrame]]:
    """Layer × layer tables ``{(a, b): {metric: table}}`` (rows the layers of a) for each pair of keys of
    ``reps``, per metric plus ``"min"``, their element-wise minimum (the paper keeps the smaller where they
    disagree). One :func:`replab.similarity.similarity_grid` per metric reduces each (model, layer) once;
    Procrustes uses ``n_procrustes`` examples only (:func:`procrustes_rows`)."""
    keys = list(dict.fromkeys(k for pair in pairs for k in pair))
    label = {k: str(i) for i, k in enumerate(keys)}
    grid_pairs = [(label[a], label[b]) for a, b in pairs]
    frames = {}
    for m in metrics:
        models = {label[k]: {name: t[procrustes_rows(len(t), n_procrustes)] if m == "procrustes" else t
                             for name, t in reps[k].items()} for k in keys}
        frames[m] = similarity_grid(models, metrics=[m], pairs=grid_pairs)
    out = {}
    for a, b in pairs:
        tables = {m: grid_table(frames[m], label[a], label[b], m) for m in metrics}
        if len(metrics) > 1:
            first = tables[metrics[0]]
            tables["min"] = pd.DataFrame(np.minimum.reduce([tables[m].loc[first.index, first.columns].to_numpy()
                                                            for m in metrics]), index=first.index,
                                         columns=first.columns)
        out[(a, b)] = tables
    return out


def mean_tables(tables: Sequence[dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """The element-wise mean of several ``{metric: table}`` results (the paper averages over seed pairs)."""
    if not tables:
        raise ValueError("tables: give at least one set of tables")
    return {k: sum(t[k] for t in tables) / len(tables) for k in tables[0]}


def similarity(reps_a: dict, reps_b: dict | None = None, metrics: Sequence[str] = METRICS,
               n_procrustes: int | None = None) -> dict[str, pd.DataFrame]:
    """:func:`similarity_tables` of one pair: layers of a (rows) against layers of b (columns; default a itself)."""
    if reps_b is None:
        return similarity_tables({"a": reps_a}, [("a", "a")], metrics, n_procrustes)[("a", "a")]
    return similarity_tables({"a": reps_a, "b": reps_b}, [("a", "b")], metrics, n_procrustes)[("a", "b")]


def model_similarity(model_a, model_b, x: torch.Tensor, layers: Sequence[str] | None = None,
                     n_procrustes: int | None = None) -> dict[str, pd.DataFrame]:
    """:func:`similarity` of two models' ``layers`` (default: all) over the same inputs ``x``."""
    reps_a, reps_b = representations(model_a, x), representations(model_b, x)
    if layers is not None:
        missing = [n for n in layers if n not in reps_a or n not in reps_b]
        if missing:
            raise ValueError(f"layers: {missing} are not layers of both models; layers: {list(reps_a)}")
        reps_a, reps_b = ({n: r[n] for n in layers} for r in (reps_a, reps_b))
    return similarity(reps_a, reps_b, n_procrustes=n_procrustes)


def diagonal(table: pd.DataFrame) -> pd.Series:
    """The similarity of each layer with the same layer of the other model (layers present in both)."""
    names = [n for n in table.index if n in table.columns]
    return pd.Series([float(table.loc[n, n]) for n in names], index=names)


def _part(name: str) -> str | None:
    if name.startswith("encoder."):
        return "encoder"
    if name in ("mean", "variance"):
        return "latent"
    if name == "sampled":
        return "sampled"
    return "decoder" if name.startswith("decoder.") or name == "output" else None


def part_means(table: pd.DataFrame | pd.Series) -> dict[str, float]:
    """Mean of the diagonal over the encoder's hidden layers, mean+variance, sampled and the decoder+output
    (``table`` a layer × layer table, or its diagonal as a Series indexed by layer)."""
    d = table if isinstance(table, pd.Series) else diagonal(table)
    means = {part: [v for n, v in d.items() if _part(n) == part] for part in ENCODER_PARTS}
    return {part: float(np.mean(v)) for part, v in means.items() if v}


def diagonal_similarity(reps_a: dict, reps_b: dict, n_procrustes: int | None = None) -> pd.Series:
    """The diagonal of :func:`similarity`'s ``"min"`` table alone: min(linear CKA, Procrustes) of each layer with
    the same layer of the other model (layers of both), at the cost of one pair per layer instead of all."""
    names = [n for n in reps_a if n in reps_b]
    rows = [procrustes_rows(len(reps_a[n]), n_procrustes) for n in names]
    return pd.Series([min(linear_cka(reps_a[n], reps_b[n]), procrustes_similarity(reps_a[n][r], reps_b[n][r]))
                      for n, r in zip(names, rows)], index=names, dtype=float)


def snapshot_parts(run, x: torch.Tensor, n_procrustes: int | None = None) -> pd.DataFrame:
    """:func:`snapshot_summary` of :func:`snapshot_similarity` from the diagonals alone
    (:func:`diagonal_similarity`): per snapshot step, the mean diagonal similarity of each part."""
    final = representations(run.model, x)
    return pd.DataFrame({step: part_means(diagonal_similarity(representations(run.model_at(step), x), final,
                                                              n_procrustes))
                         for step in sorted(run.snapshots) if step != run.config.steps}).T.rename_axis("step")


def snapshot_similarity(run, x: torch.Tensor, n_procrustes: int | None = None
                        ) -> dict[int, dict[str, pd.DataFrame]]:
    """Each snapshot of ``run`` against the trained model (Fig. 2): ``{step: {metric: table}}``, rows the
    snapshot's layers (the last step, the model itself, is left out)."""
    final = representations(run.model, x)
    # one snapshot's activations at a time (at full, a model's activations over 10,000 images take gigabytes)
    return {step: similarity(representations(run.model_at(step), x), final, n_procrustes=n_procrustes)
            for step in sorted(run.snapshots) if step != run.config.steps}


def snapshot_summary(sims: dict[int, dict[str, pd.DataFrame]], metric: str = "min") -> pd.DataFrame:
    """Per snapshot step, the mean diagonal similarity of each part (encoder, latent, sampled, decoder)."""
    return pd.DataFrame({step: part_means(tables[metric]) for step, tables in sims.items()}).T.rename_axis("step")


def first_step_above(summary: pd.DataFrame, threshold: float, final_step: int) -> dict[str, int]:
    """For each part, the first snapshot step whose similarity with the final model reaches ``threshold``
    (``final_step`` when none does before the end)."""
    hits = {part: summary.index[summary[part] >= threshold] for part in summary.columns}
    return {part: int(hit.min()) if len(hit) else int(final_step) for part, hit in hits.items()}


def collapse_scores(model, x: torch.Tensor) -> dict[str, float]:
    """Active units (Var_x E[z_j|x] > 0.01) and two CKA detectors of collapse: CKA(sampled, mean) and
    CKA(sampled, input) of one model."""
    reps = representations(model, x)
    table = similarity({k: reps[k] for k in ("input", "mean", "sampled")}, metrics=["linear_cka"])["linear_cka"]
    return {"active_units": active_units(encode(model, x)[0], unbiased=True),
            "cka_sampled_mean": float(table.loc["sampled", "mean"]),
            "cka_sampled_input": float(table.loc["sampled", "input"])}
