"""The claims of Jamroż, Kurdziel & Opala (2020) as effects with 95% intervals (:mod:`replab.evidence`).

Each page of ``notebooks/jamroz2020`` calls one function here; it returns ``(effects, measured)``, two dicts keyed
by claim id: the :class:`~replab.evidence.Effect` the verdict reads and the values shown beside it. The units of
the bootstrap are what is independent in the experiment:

- CNN pages (01, 02): the groups of nets (:func:`.jamroz2020.groups`), each pooled and modelled by its own DP-GMM;
  a group holds the same seeds in every setting, so settings are compared group by group (paired); accuracies
  are resampled over nets and test images together.
- VAE pages (03-05): the seeds of the VAEs; a seed's β-VAE and MMD-VAE at every β are paired.

Every effect is a difference in the measure's own units (nats, Fréchet distance, accuracy) or, for a fall with β,
a ratio; the claims state directions, so the smallest effect each implies is its null.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..evidence import Effect, effect_of
from .jamroz2020 import Regularisation, correctness
from .jamroz2020_vae import VAESweep

__all__ = ["over_groups", "grouped", "memorisation_effects", "regularisation_effects", "latent_effects",
           "dependence_effects", "sampling_effects", "NONINFERIORITY"]

NONINFERIORITY = 0.05   # dropout nets "generalise" when they lose less than this test accuracy to unregularised nets
_REGULARISATION_IDS = ("dropout-raises-complexity", "dropout-effect-depends-on-width",
                       "complexity-not-needed-to-generalise", "augmentation-remedies-narrow", "augmentation-consistent")


def over_groups(re: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per (``by``, layer): the mean over groups of the relative entropy (``mean``), the smallest and largest group
    (``min``, ``max``) and the mean component count: the table the figures draw."""
    return (re.groupby([*by, "layer"]).agg(mean=("mean", "mean"), min=("mean", "min"), max=("mean", "max"),
                                           components=("components", "mean")).reset_index())


def grouped(re: pd.DataFrame, setting: dict, layers: Sequence[int] | None = None) -> np.ndarray:
    """The per-group relative entropies of one setting (``{"condition": "random labels"}``) as an array (groups,
    layers), optionally only ``layers``."""
    part = re
    for column, value in setting.items():
        part = part[part[column] == value]
    if part.empty:
        raise ValueError(f"no rows for setting {setting}")
    table = part.pivot(index="group", columns="layer", values="mean").sort_index()
    return table[list(layers) if layers is not None else table.columns].to_numpy(float)


def _by_group(name: str, stat, *arrays, side: str = "greater", null: float = 0.0, seed: int = 0) -> Effect:
    return effect_of(name, stat, *arrays, null=null, side=side, axes=(0,), unit_names=("groups",), seed=seed)


def _mean_diff(a, b) -> float:
    return float(np.mean(a - b))


def memorisation_effects(re: pd.DataFrame, accuracy: pd.DataFrame, depth: int, seed: int = 0
                         ) -> tuple[dict, dict]:
    """Page 01 (Sec. 4, Fig. 1): the memorising nets' relative entropy minus the true-label nets', averaged over
    the upper half of the layers and the groups (nats), with the per-layer ratio and the accuracies beside it."""
    upper = [layer for layer in sorted(re["layer"].unique()) if layer > depth // 2]
    true = grouped(re, {"condition": "true labels"}, upper)
    random = grouped(re, {"condition": "random labels"}, upper)
    acc = accuracy.groupby("condition")[["train accuracy", "test accuracy"]].mean()
    every = over_groups(re, ["condition"]).pivot(index="layer", columns="condition", values="mean")
    effects = {"memorising-nets-more-complex": _by_group("relative entropy, random minus true labels, upper layers "
                                                         "(nats)", _mean_diff, random, true, seed=seed)}
    measured = {"memorising-nets-more-complex": {
        "upper_layers": upper, "re_true_upper": true.mean(0).round(3).tolist(),
        "re_random_upper": random.mean(0).round(3).tolist(),
        "ratio_random_over_true_per_layer": (every["random labels"] / every["true labels"]).round(3).tolist(),
        "train_acc_random": round(acc.loc["random labels", "train accuracy"], 3),
        "test_acc_random": round(acc.loc["random labels", "test accuracy"], 3),
        "test_acc_true": round(acc.loc["true labels", "test accuracy"], 3)}}
    return effects, measured


def _changes(re: pd.DataFrame, widths: Sequence[int], reg: str, layers: Sequence[int] | None = None) -> np.ndarray:
    """(groups, widths, layers): the relative entropy with ``reg`` minus without regularisation, group by group."""
    return np.stack([grouped(re, {"width": w, "regulariser": reg}, layers)
                     - grouped(re, {"width": w, "regulariser": "none"}, layers) for w in widths], axis=1)


def _no_interval(name: str, why: str) -> Effect:
    return Effect(name, 0.0, None, None, why=why)


def regularisation_effects(runs: dict, re: pd.DataFrame, r: Regularisation, seed: int = 0) -> tuple[dict, dict]:
    """Page 02 (Sec. 4, Fig. 1, App. C): the effects of dropout and augmentation on the layer-averaged relative
    entropy (differences to the unregularised nets of the same width and group, nats), augmentation in the middle
    layers of the narrowest nets, and the test accuracy of dropout nets against unregularised ones (resampled over
    nets and test images)."""
    widths, regs = sorted(r.widths), set(r.regularisers)
    narrow, wide = widths[0], widths[-1]
    effects, measured = {}, {}
    if {"none", "dropout"} <= regs:
        d = _changes(re, widths, "dropout")
        effects["dropout-raises-complexity"] = _by_group(
            "relative entropy, dropout minus none, mean over widths and layers (nats)", lambda x: float(x.mean()), d,
            seed=seed)
        effects["dropout-effect-depends-on-width"] = _by_group(
            f"dropout's raise at width {narrow} minus at width {wide} (nats)",
            lambda x: float(x[:, 0].mean() - x[:, -1].mean()), d, seed=seed) if narrow != wide else _no_interval(
            "dropout's raise, narrow minus wide", "the profile has a single width: nothing to compare")
        measured["dropout-raises-complexity"] = {"dropout_minus_none": dict(zip(widths, d.mean((0, 2)).round(3)))}
        measured["dropout-effect-depends-on-width"] = {"narrow": narrow, "wide": wide}
        right = {reg: np.stack([np.stack([correctness(run, "test").numpy() for run in runs[w, reg]]) for w in widths],
                               axis=-1) for reg in ("none", "dropout")}   # (nets, test images, widths)
        effects["complexity-not-needed-to-generalise"] = effect_of(
            "test accuracy, dropout minus none, mean over widths", _mean_diff, right["dropout"], right["none"],
            null=-NONINFERIORITY, axes=(0, 1), unit_names=("nets", "test images"), seed=seed)
        measured["complexity-not-needed-to-generalise"] = {
            "test_acc_dropout": dict(zip(widths, right["dropout"].mean((0, 1)).round(4))),
            "test_acc_none": dict(zip(widths, right["none"].mean((0, 1)).round(4))),
            "re_raise_by_dropout": float(d.mean().round(3))}
    if {"none", "augmentation"} <= regs:
        a = _changes(re, widths, "augmentation")
        effects["augmentation-consistent"] = _by_group(
            "largest change over widths, augmentation minus none (nats)", lambda x: float(x.mean((0, 2)).max()), a,
            side="less", seed=seed)
        measured["augmentation-consistent"] = {"augmentation_minus_none": dict(zip(widths, a.mean((0, 2)).round(3)))}
        middle = [layer for layer in sorted(re["layer"].unique()) if r.depth // 4 < layer <= 3 * r.depth // 4]
        m = _changes(re, [narrow], "augmentation", middle)
        effects["augmentation-remedies-narrow"] = _by_group(
            f"relative entropy of the middle layers at width {narrow}, none minus augmentation (nats)",
            lambda x: -float(x.mean()), m, seed=seed)
        measured["augmentation-remedies-narrow"] = {
            "width": narrow, "middle_layers": middle,
            "re_none": grouped(re, {"width": narrow, "regulariser": "none"}, middle).mean(0).round(3).tolist(),
            "re_augmentation": grouped(re, {"width": narrow, "regulariser": "augmentation"}, middle
                                       ).mean(0).round(3).tolist()}
    missing = [i for i in _REGULARISATION_IDS if i not in effects]
    effects.update({i: _no_interval(i, "the profile's regularisers leave out the nets it compares") for i in missing})
    return effects, {i: measured.get(i, {}) for i in _REGULARISATION_IDS}


def _per_seed(table: pd.DataFrame, objective: str, beta: float, column: str = "mean", **where) -> np.ndarray:
    """The values of ``column`` for (objective, β) and the rows matching ``where``, one per seed in seed order."""
    part = table[(table["objective"] == objective) & (table["beta"] == beta)]
    for key, value in where.items():
        part = part[part[key] == value]
    return part.groupby("seed")[column].mean().sort_index().to_numpy(float)


def _by_seed(name: str, stat, *arrays, side: str = "greater", null: float = 0.0, seed: int = 0) -> Effect:
    return effect_of(name, stat, *arrays, null=null, side=side, axes=(0,), unit_names=("seeds",), seed=seed)


def _ratio(a, b) -> float:
    return float(np.mean(a) / np.mean(b))


def _fall_and_gap(table: pd.DataFrame, v: VAESweep, what: str, seed: int) -> tuple[Effect, Effect, dict]:
    lo, hi = min(v.betas), max(v.betas)
    b_lo, b_hi, m_hi = (_per_seed(table, o, b) for o, b in (("β-VAE", lo), ("β-VAE", hi), ("MMD-VAE", hi)))
    fall = _by_seed(f"β-VAE {what}, β = {hi:g} over β = {lo:g}", _ratio, b_hi, b_lo, null=1.0, side="less",
                    seed=seed)
    gap = _by_seed(f"{what} at β = {hi:g}, MMD-VAE minus β-VAE (nats)", _mean_diff, m_hi, b_hi, seed=seed)
    means = {o: [round(float(_per_seed(table, o, b).mean()), 4) for b in v.betas] for o in ("β-VAE", "MMD-VAE")}
    return fall, gap, {"betas": list(v.betas), "beta_vae": means["β-VAE"], "mmd_vae": means["MMD-VAE"]}


def latent_effects(re: pd.DataFrame, v: VAESweep, seed: int = 0) -> tuple[dict, dict]:
    """Page 03 (Sec. 5.1, Fig. 2 left): the β-VAE's relative entropy at the largest β over the smallest (a ratio),
    and the MMD-VAE's minus the β-VAE's at the largest β (nats), over the seeds of the VAEs."""
    fall, gap, means = _fall_and_gap(re, v, "relative entropy", seed)
    measured = {"beta-vae-collapses": {"betas": means["betas"], "re_beta_vae": means["beta_vae"]},
                "mmd-vae-stays-rich": {"betas": means["betas"], "re_mmd_vae": means["mmd_vae"],
                                       "re_beta_vae": means["beta_vae"]}}
    return {"beta-vae-collapses": fall, "mmd-vae-stays-rich": gap}, measured


def _degradation(quality: pd.DataFrame, objective: str, beta: float) -> np.ndarray:
    """Per seed: the Fréchet distance of samples from p_ind(z*) minus that from p(z*)."""
    return (_per_seed(quality, objective, beta, "fd", codes="p_ind(z*)")
            - _per_seed(quality, objective, beta, "fd", codes="p(z*)"))


def dependence_effects(tc: pd.DataFrame, quality: pd.DataFrame | None, v: VAESweep, seed: int = 0
                       ) -> tuple[dict, dict]:
    """Page 04 (Sec. 5.1, Fig. 2 right and Fig. 3): the β-VAE's total correlation at the largest β over the
    smallest, the MMD-VAE's minus the β-VAE's at the largest β, and (with a Fréchet classifier, ``quality`` not
    None) how much dropping the dependence between latent dimensions (codes from p_ind(z*) instead of p(z*)) raises
    the Fréchet distance of the samples, for the MMD-VAE at the largest β, the β-VAE at the smallest, and the
    β-VAE's raise at the smallest β minus at the largest."""
    fall, gap, means = _fall_and_gap(tc, v, "total correlation", seed)
    effects = {"beta-vae-decorrelates": fall, "mmd-vae-stays-correlated": gap}
    measured = {"beta-vae-decorrelates": {"betas": means["betas"], "tc_beta_vae": means["beta_vae"]},
                "mmd-vae-stays-correlated": {"betas": means["betas"], "tc_mmd_vae": means["mmd_vae"],
                                             "tc_beta_vae": means["beta_vae"]}}
    lo, hi = min(v.betas), max(v.betas)
    ids = ("mmd-samples-need-dependence", "beta-vae-small-beta-samples-need-dependence",
           "beta-vae-strong-beta-samples-indistinguishable")
    if quality is None or quality.empty:
        why = "the dataset has neither labels nor attributes for the Fréchet classifier"
        return {**effects, **{i: _no_interval("Fréchet distance", why) for i in ids}}, measured
    mmd, b_lo, b_hi = (_degradation(quality, o, b) for o, b in (("MMD-VAE", hi), ("β-VAE", lo), ("β-VAE", hi)))
    effects[ids[0]] = _by_seed(f"MMD-VAE, β = {hi:g}: Fréchet distance, p_ind(z*) minus p(z*)", np.mean, mmd,
                               seed=seed)
    effects[ids[1]] = _by_seed(f"β-VAE, β = {lo:g}: Fréchet distance, p_ind(z*) minus p(z*)", np.mean, b_lo,
                               seed=seed)
    effects[ids[2]] = _by_seed(f"β-VAE: that raise at β = {lo:g} minus at β = {hi:g}", _mean_diff, b_lo, b_hi,
                               seed=seed)
    fd = quality.groupby(["objective", "beta", "codes"])["fd"].mean()
    measured.update({i: {"beta": b, "fd_joint": round(fd[o, b, "p(z*)"], 4),
                         "fd_factorial": round(fd[o, b, "p_ind(z*)"], 4)}
                     for i, o, b in zip(ids, ("MMD-VAE", "β-VAE", "β-VAE"), (hi, lo, hi))})
    measured[ids[2]]["fd_raise_small_beta"] = round(float(b_lo.mean()), 4)
    return effects, measured


def sampling_effects(quality: pd.DataFrame | None, v: VAESweep, seed: int = 0) -> tuple[dict, dict]:
    """Page 05 (Sec. 5.2, Fig. 4): for the MMD-VAE, the smallest improvement over β of codes from p(z* | c)
    (averaged over kept sweeps) over prior codes, in Fréchet distance (prior minus DP-GMM) and in the classifier's
    confidence (DP-GMM minus prior), over the seeds of the VAEs."""
    ids = ("dpgmm-codes-better-fd", "dpgmm-codes-more-confident")
    if quality is None or quality.empty:
        why = "the dataset has neither labels nor attributes for the Fréchet classifier"
        return {i: _no_interval(i, why) for i in ids}, {}
    effects, measured = {}, {}
    for i, column, sign in zip(ids, ("fd", "confidence"), (1.0, -1.0)):
        prior = np.stack([_per_seed(quality, "MMD-VAE", b, column, codes="prior") for b in v.betas], axis=1)
        dp = np.stack([_per_seed(quality, "MMD-VAE", b, column, codes="DP-GMM p(z*|c)") for b in v.betas], axis=1)
        gain = sign * (prior - dp)   # (seeds, betas): positive where the DP-GMM codes do better
        effects[i] = _by_seed(f"MMD-VAE {column}: smallest gain over β of DP-GMM codes over prior codes",
                              lambda x: float(x.mean(0).min()), gain, seed=seed)
        measured[i] = {"betas": list(v.betas), f"{column}_prior": prior.mean(0).round(4).tolist(),
                       f"{column}_dpgmm_mean_over_sweeps": dp.mean(0).round(4).tolist()}
    return effects, measured
