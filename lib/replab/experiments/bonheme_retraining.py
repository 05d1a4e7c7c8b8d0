"""The effects behind the Bonheme & Grześ (2023) claims on retraining the decoder (Figs. 6, 9) and on the public
transfer script: each claim's number with a 95% interval (:mod:`replab.evidence`) from the sweep's per-example
target losses, resampled over seeds and test examples together (a two-way paired bootstrap), since a loss varies
with the training run and with the test images it is measured on.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..evidence import Effect, effect_of
from .bonheme_effects import mean_of_all

__all__ = ["loss_cube", "mean_rank_correlation", "latent_ratio", "over_seeds_and_examples", "retraining",
           "example_losses", "fine_tuning"]


# -- 2023, Figs. 6, 9: retraining the decoder --------------------------------------------------------------------
def _rank_correlations(results, order: str) -> np.ndarray:
    """Per seed, Spearman's ρ between the number of layers retrained (in ``order``) and the target loss."""
    from scipy.stats import spearmanr

    part = results[results["order"] == order]
    return np.array([spearmanr(g["n_retrained"], g["reconstruction_loss"]).statistic
                     for _, g in part.sort_values("n_retrained").groupby("seed")])


def loss_cube(results, order: str) -> np.ndarray:
    """The per-example target losses of one ``order`` as an array seeds × k × test examples (k ascending): the
    sweep rows' ``example_losses``, the same test images for every seed and k, so seeds and examples can be
    resampled jointly."""
    part = results[results["order"] == order].sort_values(["seed", "n_retrained"])
    seeds = part["seed"].unique()
    return np.stack([np.stack(list(part[part["seed"] == s]["example_losses"])) for s in seeds])


def _spearman_rows(values: np.ndarray) -> np.ndarray:
    """Spearman's ρ of each row of ``values`` (seeds × k) against k = 0, 1, …: the Pearson correlation of the
    ranks (ties averaged, as ``scipy.stats.spearmanr``)."""
    from scipy.stats import rankdata

    r = rankdata(values, axis=1)
    k = np.arange(values.shape[1], dtype=float)
    r, k = r - r.mean(axis=1, keepdims=True), k - k.mean()
    return (r @ k) / np.sqrt((r ** 2).sum(axis=1) * (k ** 2).sum())


def mean_rank_correlation(cube: np.ndarray) -> float:
    """The mean over seeds of Spearman's ρ(k, loss), each seed's loss at k the mean over the test examples."""
    return float(_spearman_rows(cube.mean(axis=2)).mean())


def latent_ratio(inner: np.ndarray, latent: np.ndarray) -> float:
    """Per seed, the largest change over k of the mean loss from retraining the mean and variance too, and the
    change from retraining 0 to all decoder layers; the ratio of their means over seeds."""
    a, b = inner.mean(axis=2), latent.mean(axis=2)
    return float(np.abs(b - a).max(axis=1).mean() / np.abs(a[:, 0] - a[:, -1]).mean())


def over_seeds_and_examples(name: str, statistic: Callable[..., float], *cubes, null: float = 0.0,
                            side: str = "greater", smallest: float | None = None) -> Effect:
    """``statistic(*cubes)`` (arrays seeds × cases × test examples) with its two-way paired bootstrap interval:
    seeds and test examples resampled together, the same draws for every array. Without an interval, saying
    why, when there is only one seed."""
    cubes = tuple(np.asarray(c, float) for c in cubes)
    seeds, examples = cubes[0].shape[0], cubes[0].shape[2]
    if seeds < 2 or examples < 2:
        return Effect(name, float(statistic(*cubes)), None, None, null=null, side=side, smallest=smallest,
                      n={"seeds": seeds, "examples": examples},
                      why="one seed at this profile: no interval over seeds" if seeds < 2 else
                      "one test example: no interval")
    return effect_of(name, statistic, *cubes, null=null, side=side, smallest=smallest, axes=(0, 2),
                     unit_names=("seeds", "examples"))


def retraining(results) -> dict:
    """Figs. 6 and 9 from the sweep rows of every seed (``seed``, ``order``, ``n_retrained``,
    ``reconstruction_loss`` and the per-example ``example_losses``): ``innermost`` and ``outermost``, the mean
    over seeds of ρ(k, loss) (below 0: more layers, lower loss; an interval entirely above −0.8 counts against),
    and ``latent``, the largest change over k from retraining the mean and variance too, as a fraction of the
    change from 0 to all decoder layers (ratio of the means over seeds; below 0.25 for the paper). Each interval
    is a paired bootstrap over seeds and test examples together (the two sources of variation of a loss)."""
    cubes = {o: loss_cube(results, o) for o in ("innermost", "outermost", "innermost + mean/variance")}
    out = {order: over_seeds_and_examples(f"Spearman ρ(k, loss), {order} first, mean over seeds",
                                          mean_rank_correlation, cubes[order], side="less", smallest=-0.8)
           for order in ("innermost", "outermost")}
    loss = results.pivot_table(index=["seed", "n_retrained"], columns="order", values="reconstruction_loss")
    latent = (loss["innermost + mean/variance"] - loss["innermost"]).abs().groupby("seed").max().to_numpy()
    inner = loss["innermost"].unstack("n_retrained")
    decoder = (inner.iloc[:, 0] - inner.iloc[:, -1]).abs().to_numpy()
    out["latent"] = over_seeds_and_examples("latent-retraining change / decoder-retraining change", latent_ratio,
                                            cubes["innermost"], cubes["innermost + mean/variance"], null=0.25,
                                            side="less")
    out["measured"] = {"spearman_by_seed": {o: _rank_correlations(results, o).round(2).tolist()
                                            for o in ("innermost", "outermost")},
                       "loss_by_k": {o: loss[o].groupby("n_retrained").mean().round(2).to_dict() for o in loss},
                       "target_trained": round(float(results.groupby("seed")["reference"].first().mean()), 2),
                       "latent_effect": latent.round(2).tolist(), "decoder_effect": decoder.round(2).tolist()}
    return out


def example_losses(model, x) -> np.ndarray:
    """−log p(x | z = E[z | x]) of each row of ``x`` (:func:`replab.objectives.reconstruction_loss` per example)."""
    import torch

    dev = next(model.parameters()).device
    with torch.no_grad():
        return np.concatenate([(-model.log_likelihood(model.decode(model.encode(xb.to(dev))[0]), xb.to(dev)))
                               .cpu().numpy().reshape(len(xb)) for xb in torch.split(x, 250)])


def fine_tuning(setup, steps: int) -> dict:
    """The library's fine-tuning of the source decoder (``reset=False``) against the source itself: the mean
    over target test images of (source loss − fine-tuned loss), > 0 when it trains, with its interval over the
    images (``trains``); and how far the public script's fine-tuning is from the source (``public_change``, 0
    when it trains nothing)."""
    from ..transfer import transfer

    kw = dict(steps=steps, reset=False)
    tuned = transfer(setup.source, setup.target_train, setup.layers, **kw)
    legacy = transfer(setup.source, setup.target_train, setup.layers, legacy_freeze_when_not_reset=True, **kw)
    src = example_losses(setup.source.model, setup.x)
    diff = src - example_losses(tuned, setup.x)
    change = float(np.abs(example_losses(legacy, setup.x) - src).max())
    if change > 1e-6:  # the public script did train something: the claim's first half fails, whatever the rest
        return {"effect": Effect("largest change of the public script's output (nats)", change, change, change,
                                 side="less", n={"examples": len(src)}, method="deterministic: no resampling"),
                "public_change": change}
    return {"effect": effect_of("source − fine-tuned target loss (nats per image)", mean_of_all, diff, axes=(0,),
                                unit_names=("examples",)), "public_change": change}
