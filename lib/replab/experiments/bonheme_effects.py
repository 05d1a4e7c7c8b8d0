"""The effects behind the Bonheme & Grześ (2022, 2023) claims: each claim's one number with a 95% interval
(:mod:`replab.evidence`) from per-seed measurements, resampled over seeds (the independent training runs).

Every function takes an array whose first axis is the seed (one row per independent run; the other axes are the
objectives, datasets or factors the claim ranges over) and returns an :class:`~replab.evidence.Effect`. With a
single seed (the ``smoke`` profile) there is nothing to resample: the effect carries its estimate and says why
it has no interval.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..evidence import Effect, effect_of

__all__ = ["over_seeds", "min_of_seed_means", "mean_of_all", "ratio_of_means", "max_abs_of_seed_means",
           "auc", "stratified_auc_effect"]


def min_of_seed_means(values: np.ndarray) -> float:
    """The smallest, over the claim's cases (axis 1 onwards, flattened), of the mean over seeds: a claim that
    holds "for every objective" holds as far as its weakest case does."""
    v = np.asarray(values, float)
    return float(v.reshape(v.shape[0], -1).mean(axis=0).min())


def max_abs_of_seed_means(values: np.ndarray) -> float:
    """The largest |mean over seeds| over the claim's cases: how far the worst case is from no difference."""
    v = np.asarray(values, float)
    return float(np.abs(v.reshape(v.shape[0], -1).mean(axis=0)).max())


def mean_of_all(values: np.ndarray) -> float:
    """The mean over seeds and cases."""
    return float(np.mean(values))


def ratio_of_means(numerator: np.ndarray, denominator: np.ndarray) -> float:
    """mean(numerator) / mean(denominator), both over seeds (and cases)."""
    return float(np.mean(numerator) / np.mean(denominator))


def over_seeds(name: str, statistic: Callable[..., float], *arrays, null: float = 0.0, side: str = "greater",
               smallest: float | None = None, n: dict | None = None) -> Effect:
    """``statistic(*arrays)`` with its paired bootstrap interval over seeds (axis 0 of every array); without an
    interval, saying why, when there is only one seed."""
    arrays = tuple(np.asarray(a, float) for a in arrays)
    seeds = arrays[0].shape[0]
    if seeds < 2:
        return Effect(name, float(statistic(*arrays)), None, None, null=null, side=side, smallest=smallest,
                      n={"seeds": seeds, **(n or {})}, why="one seed at this profile: no interval over seeds")
    return effect_of(name, statistic, *arrays, null=null, side=side, smallest=smallest, n=n, axes=(0,),
                     unit_names=("seeds",))


def auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """P(a positive score exceeds a negative one), ties counting half (the Mann-Whitney AUC)."""
    p, q = np.asarray(positive, float)[:, None], np.asarray(negative, float)[None, :]
    return float(((p > q) + 0.5 * (p == q)).mean())


def stratified_auc_effect(name: str, positive: Sequence[float], negative: Sequence[float],
                          n_resamples: int = 2000, seed: int = 0) -> Effect:
    """The AUC of a score separating two groups of models, against chance (0.5), with a percentile bootstrap
    that resamples each group within itself (so both groups are in every resample); no interval with fewer
    than two members in a group."""
    p, q = np.asarray(positive, float), np.asarray(negative, float)
    n = {"positive": len(p), "negative": len(q)}
    if min(len(p), len(q)) < 2:
        est = auc(p, q) if min(len(p), len(q)) else 0.5
        return Effect(name, est, None, None, null=0.5, n=n,
                      why="fewer than two models in a group: nothing to resample")
    rng = np.random.default_rng(seed)
    values = [auc(rng.choice(p, len(p)), rng.choice(q, len(q))) for _ in range(n_resamples)]
    low, high = np.quantile(values, [0.025, 0.975])
    return Effect(name, auc(p, q), float(low), float(high), null=0.5, n=n,
                  method=f"percentile bootstrap within each group of models, {n_resamples} resamples")


# -- 2022, Fig. 2: the encoder before the decoder ---------------------------------------------------------------
def encoder_first(by_seed: dict, threshold: float, final_step: int) -> dict:
    """Fig. 2's two effects from ``by_seed[seed][model]`` (diagonal means per part and snapshot step, as
    :func:`replab.layer_similarity.snapshot_summary` gives them), each the smallest over the models of the mean
    over seeds:

    * ``before``: encoder minus decoder similarity with the final model at the first snapshot;
    * ``converges``: (step the decoder reaches ``threshold`` − step the encoder does) / ``final_step``, a part
      that never reaches it before the end counting as reaching it at ``final_step``: a tie (both at the end)
      is 0, no effect.

    Returns ``{"before": Effect, "converges": Effect, "measured": {...}}``."""
    from ..layer_similarity import first_step_above

    seeds, names = sorted(by_seed), list(next(iter(by_seed.values())))
    first = np.array([[float(by_seed[s][k].iloc[0]["encoder"] - by_seed[s][k].iloc[0]["decoder"]) for k in names]
                      for s in seeds])
    reach = {s: {k: first_step_above(by_seed[s][k], threshold, final_step) for k in names} for s in seeds}
    lead = np.array([[(reach[s][k]["decoder"] - reach[s][k]["encoder"]) / final_step for k in names] for s in seeds])
    n = {"models": len(names)}
    return {"before": over_seeds("encoder − decoder similarity at the first snapshot (weakest objective)",
                                 min_of_seed_means, first, n=n),
            "converges": over_seeds(f"decoder's − encoder's step to {threshold} / steps (weakest objective)",
                                    min_of_seed_means, lead, n=n),
            "measured": {"first_step": int(next(iter(by_seed[seeds[0]].values())).index[0]), "seeds": seeds,
                         "encoder_minus_decoder_first": dict(zip(names, first.mean(0).round(3).tolist())),
                         "step_reached": {f"s{s}": {k: [reach[s][k]["encoder"], reach[s][k]["decoder"]] for k in names}
                                          for s in seeds}}}


# -- 2023, Table 1 and App. A: classifiers on source- and target-learned latent means ----------------------------
def _accuracy_array(acc, target: str, source: str, factors=None) -> np.ndarray:
    """Test accuracy (seeds × factors) of the classifiers of ``target``'s factors on ``source``-learned means."""
    part = acc[(acc["target"] == target) & (acc["source"] == source)]
    table = part.pivot_table(index="seed", columns="factor", values="test_accuracy")
    return table[list(factors) if factors is not None else sorted(table.columns)].to_numpy(float)


def _chance(acc, target: str) -> float:
    """Mean over ``target``'s factors of 1 / classes: the accuracy of guessing, averaged like Table 1's."""
    part = acc[acc["target"] == target].drop_duplicates("factor")
    return float((1.0 / part["n_classes"]).mean())


def _shape_lead(drops: np.ndarray) -> float:
    """Shape's mean drop (column 0) minus the largest mean drop of the other factors."""
    means = np.asarray(drops, float).mean(axis=0)
    return float(means[0] - means[1:].max())


def table1(accuracy, datasets: Sequence[str], tolerance: float, classifier: str = "gradient_boosting") -> dict:
    """Table 1's "on par" claim in both directions between ``datasets``: the largest |target-learned −
    source-learned| mean accuracy over factors (per seed, averaged over seeds), to lie below ``tolerance``.
    When a target-learned accuracy is not above chance in its interval, "on par" cannot be read (two useless
    codes are on par): no interval then. Returns ``{"on_par": Effect, "measured": {...}}``."""
    acc = accuracy[accuracy["classifier"] == classifier]
    own = {t: _accuracy_array(acc, t, t).mean(axis=1) for t in datasets}
    other = {t: _accuracy_array(acc, t, next(d for d in datasets if d != t)).mean(axis=1) for t in datasets}
    gaps = np.stack([own[t] - other[t] for t in datasets], axis=1)
    above = np.stack([own[t] - _chance(acc, t) for t in datasets], axis=1)
    informative = over_seeds("target-learned accuracy above chance (weakest target)", min_of_seed_means, above)
    name = "largest |target-learned − source-learned accuracy| over the two directions"
    effect = over_seeds(name, max_abs_of_seed_means, gaps, null=tolerance, side="less")
    if informative.low is not None and informative.low <= 0:
        effect = Effect(name, effect.estimate, None, None, null=tolerance, side="less", n=effect.n,
                        why="a target-learned accuracy is not above chance in its interval: on par says nothing")
    return {"on_par": effect, "measured": {
        "accuracy": {f"{t} from {s}": round(float(v), 3) for t in datasets
                     for s, v in ((t, own[t].mean()), (next(d for d in datasets if d != t), other[t].mean()))},
        "chance": {t: round(_chance(acc, t), 3) for t in datasets}, "gap": dict(zip(datasets, gaps.mean(0).round(3))),
        "above_chance_low": None if informative.low is None else round(informative.low, 3)}}


def cars3d_exception(accuracy, classifier: str = "gradient_boosting", tolerance: float = 0.05) -> Effect:
    """Table 1's exception: on Cars3D, CelebA-learned means fall short of Cars3D-learned ones by more than
    ``tolerance`` (the paper: 0.59 against 0.42). ``accuracy`` is None when the two datasets are not here."""
    name = "Cars3D-learned − CelebA-learned accuracy on Cars3D"
    if accuracy is None:
        return Effect(name, 0.0, None, None, null=tolerance, why="needs Cars3D and CelebA (full profile)")
    acc = accuracy[accuracy["classifier"] == classifier]
    gap = (_accuracy_array(acc, "cars3d", "cars3d") - _accuracy_array(acc, "cars3d", "celeba")).mean(axis=1)
    return over_seeds(name, mean_of_all, gap, null=tolerance)


def shared_factors(accuracy, other: str, classifier: str = "gradient_boosting") -> dict:
    """App. A on dSprites as target, with ``other``-learned means: ``shape`` (shape's drop minus the largest drop
    of another factor, > 0 when shape drops most) and ``positions`` (the mean drop of posX and posY, < 0 when
    they gain, as in the paper)."""
    acc = accuracy[accuracy["classifier"] == classifier]
    factors = ["shape"] + sorted(set(acc.loc[acc["target"] == "dsprites", "factor"]) - {"shape"})
    drops = _accuracy_array(acc, "dsprites", "dsprites", factors) - _accuracy_array(acc, "dsprites", other, factors)
    pos = drops[:, [factors.index("posX"), factors.index("posY")]]
    return {"shape": over_seeds("shape's drop − the largest other drop", _shape_lead, drops),
            "positions": over_seeds("mean drop of posX and posY", mean_of_all, pos, side="less"),
            "drop": dict(zip(factors, drops.mean(0).round(3).tolist()))}


# -- 2023, Fig. 5: generic encoders, specific decoders ---------------------------------------------------------
def generic_encoders(parts, margin: float) -> dict:
    """Fig. 5 from the diagonal means per part of every seed (``parts``, rows ``(seed, model)``): per seed,
    the similarity to the target VAE of its other-seed twin minus that of the source VAE (``encoder``: to lie
    below ``margin``; ``decoder``: above it) and minus that of the source VAE with its latent retrained
    (``retrained_decoder``: above it)."""
    same = parts.xs("target, other seed", level="model")
    cross = parts.xs("source", level="model")
    retr = parts.xs("source, latent retrained", level="model")
    return {"encoder": over_seeds("same-dataset − cross-dataset encoder similarity", mean_of_all,
                                  (same["encoder"] - cross["encoder"]).to_numpy(), null=margin, side="less"),
            "decoder": over_seeds("same-dataset − cross-dataset decoder similarity", mean_of_all,
                                  (same["decoder"] - cross["decoder"]).to_numpy(), null=margin),
            "retrained_decoder": over_seeds("same-dataset − latent-retrained decoder similarity", mean_of_all,
                                            (same["decoder"] - retr["decoder"]).to_numpy(), null=margin),
            "measured": {"same_dataset": same.mean().round(3).to_dict(), "cross_dataset": cross.mean().round(3).to_dict(),
                         "retrained": retr.mean().round(3).to_dict(), "seeds": [int(s) for s in same.index]}}


# -- 2022, Fig. 4 and Apps. G, H: across objectives and strengths, classifiers, fully connected VAEs ---------------
def _part_gap(parts, kind: str, high: str, low: str) -> np.ndarray:
    """Seeds × pairs of ``high`` − ``low`` diagonal means of the ``kind`` rows of ``parts`` (rows
    ``(kind, pair, seed)``)."""
    part = parts.xs(kind, level="kind")
    return (part[high] - part[low]).unstack("pair").to_numpy(float)


def objectives(parts, appendix: dict, clf_level: float = 0.7) -> dict:
    """Fig. 4 and Apps. H, G from the per-seed diagonal means of :func:`~replab.experiments.bonheme2022.
    across_objectives` and :func:`~replab.experiments.bonheme2022_appendix.appendix_models`: each the weakest
    pair's mean over seeds (``decoders``: the mean over pairs), the App. G one without an interval when a fully
    connected VAE is still collapsed (final KL under 1 nat), as there is no code to compare."""
    out = {"encoders": over_seeds("encoder − mean/variance similarity across objectives (weakest pair)",
                                  min_of_seed_means, _part_gap(parts, "across objectives", "encoder", "latent")),
           "strengths": over_seeds("encoder − mean/variance similarity across strengths (weakest objective)",
                                   min_of_seed_means, _part_gap(parts, "across strengths", "encoder", "latent")),
           "decoders": over_seeds("encoder − decoder similarity across objectives (mean over pairs)", mean_of_all,
                                  _part_gap(parts, "across objectives", "encoder", "decoder")),
           "classifier": over_seeds("classifier–VAE encoder similarity (weakest objective)", min_of_seed_means,
                                    np.asarray(appendix["clf_by_seed"]), null=clf_level)}
    fc = appendix["fc_by_seed"]
    gap = np.array([[v["parts"]["encoder"] - v["parts"]["latent"]] for v in fc.values()])
    kl = min(s["final KL"] for v in fc.values() for s in v["state"].values())
    name = "FC encoder − mean/variance similarity"
    out["fully_connected"] = (over_seeds(name, mean_of_all, gap) if kl >= 1 else
                              Effect(name, float(gap.mean()), None, None, n={"seeds": len(gap)},
                                     why=f"a fully connected VAE is still collapsed (final KL {kl:.2f} nats)"))
    return out


# -- 2022, Fig. 3: posterior collapse ----------------------------------------------------------------------------
def collapse(result) -> dict:
    """Fig. 3 from :func:`~replab.experiments.bonheme2022.posterior_collapse`: ``dark``, the `sampled` column
    mean against the collapsed model over that against a second well-behaved model (ratio of the means over
    seeds; below 0.5 for the claim), and ``detector``, the AUC of CKA(sampled, input) for telling the models with
    active units from those without (above 0.5, chance)."""
    by_seed = result.by_seed.loc["sampled"].unstack()
    det = result.detectors
    alive = det.loc[det["active_units"] > 0, "cka_sampled_input"]
    dead = det.loc[det["active_units"] == 0, "cka_sampled_input"]
    return {"dark": over_seeds("sampled column: vs collapsed / vs well-behaved", ratio_of_means,
                               by_seed["vs collapsed"].to_numpy(), by_seed["vs well-behaved"].to_numpy(),
                               null=0.5, side="less"),
            "detector": stratified_auc_effect("AUC of CKA(sampled, input) for active units", alive, dead),
            "measured": {"sampled_vs_collapsed": by_seed["vs collapsed"].round(3).tolist(),
                         "sampled_vs_well": by_seed["vs well-behaved"].round(3).tolist(),
                         "n_collapsed": int(len(dead)), "n_active": int(len(alive)),
                         "max_cka_collapsed": float(dead.max()) if len(dead) else None,
                         "min_cka_active": float(alive.min()) if len(alive) else None}}


# -- 2023, Sec. 2.3 and Fig. 1: CKA and Procrustes on synthetic matrices ------------------------------------------
def metric_sanity(fig1, ding, tests, n_permutations: int, tolerance: float = 0.1) -> dict:
    """The metric-sanity effects from the long tables of :mod:`replab.similarity.synthetic` (a ``seed`` column,
    one draw per seed): ``agree`` (the largest |mean over draws| of CKA − f, Procrustes − f and CKA − Procrustes
    at the most examples, f = 0.8, 0.5; below ``tolerance``), ``overestimates`` (unrelated pair: Procrustes − CKA
    averaged over the example counts), ``small`` (CKA − Procrustes when the largest 10% of the components are
    the same; the claim implies at least ``tolerance``), and ``permutation`` (the unrelated pair's smaller
    p-value, with its exact interval over the permutations, above 0.05; no interval when the related pair is
    not flagged)."""
    from ..evidence import binomial_interval

    n_max = fig1["n_examples"].max()
    at = fig1[fig1["n_examples"] == n_max].pivot_table(index="seed", columns=["shared", "metric"], values="similarity")
    devs = np.stack([d for f in (0.8, 0.5) for d in (at[f, "CKA"] - f, at[f, "Procrustes"] - f,
                                                      at[f, "CKA"] - at[f, "Procrustes"])], axis=1)
    un = fig1[fig1["shared"] == 0.0].pivot_table(index=["seed", "n_examples"], columns="metric", values="similarity")
    over = (un["Procrustes"] - un["CKA"]).groupby("seed").mean().to_numpy()
    d90 = ding[ding["removed"] == 0.9].pivot_table(index="seed", columns="metric", values="similarity")
    p = tests.set_index(["shared", "metric"])["p_value"]
    k = int(round(min(p[0.0, "CKA"], p[0.0, "Procrustes"]) * (n_permutations + 1))) - 1
    name = "smaller p-value of the unrelated pair"
    perm = (binomial_interval(name, k, n_permutations, null=0.05) if max(p[0.8, "CKA"], p[0.8, "Procrustes"]) < 0.05
            else Effect(name, float(k / n_permutations), None, None, null=0.05, why="the related pair is not flagged"))
    return {"agree": over_seeds("largest |deviation| from the shared fraction or between the metrics",
                                max_abs_of_seed_means, devs, null=tolerance, side="less"),
            "overestimates": over_seeds("Procrustes − CKA, unrelated pair, mean over example counts", mean_of_all,
                                        over),
            "small": over_seeds("CKA − Procrustes, largest 10% of the components the same", mean_of_all,
                                (d90["CKA"] - d90["Procrustes"]).to_numpy(), smallest=tolerance),
            "permutation": perm}
