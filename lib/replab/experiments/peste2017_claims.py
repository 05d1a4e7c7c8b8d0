"""The claims of Peşte, Malagò & Sârbu (2017) as effects with 95% intervals, one function per page.

Each function takes what one page's experiment returned (:mod:`.peste2017`, :mod:`.peste2017_probes`) and returns
``{name: Evidence}``: the claim's effect as one number with its interval (:class:`replab.evidence.Effect`, read by
:func:`replab.evidence.rule`) and the measured values the page records beside it. The intervals are paired
bootstraps (:func:`replab.evidence.effect_of`) over the runs (seeds) and, where each test digit or pair of digits
is measured, over those too (a crossed resample, ``axes=(0, 1)``). Models of different α or k with the same run
index share their seed, so they are paired by run; every model sees the same test digits, so those are paired too.
An axis with a single entry (one run) is not resampled; with no axis left, the effect has no interval.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from ..evidence import Effect, effect_of

__all__ = ["Evidence", "PROBE_ACCURACY_FLOOR", "COUNT_MARGIN", "active_component_effects", "likelihood_effects",
           "probe_effects", "geodesic_effects"]

# Sec. 2.2 reports 0.93-0.94, two decimals: the smallest accuracy that rounds to 0.93.
PROBE_ACCURACY_FLOOR = 0.925
# A count of components changes by whole components: "the same number" is a change of less than one.
COUNT_MARGIN = 1.0


class Evidence(NamedTuple):
    effect: Effect
    measured: dict


def _effect(name: str, statistic: Callable[..., float], arrays: list, units: tuple[str, ...], *, seed: int,
            **rule) -> Effect:
    """:func:`effect_of` over the leading axes of ``arrays`` named by ``units`` that hold at least two entries."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    axes = [i for i, _ in enumerate(units) if arrays[0].shape[i] >= 2]
    counts = {u: arrays[0].shape[i] for i, u in enumerate(units)}
    if not axes:
        return Effect(name, float(statistic(*arrays)), None, None, n=counts,
                      why=f"a single entry along every resampled axis ({', '.join(units)})", **rule)
    return effect_of(name, statistic, *arrays, axes=axes, unit_names=[units[i] for i in axes], n=counts, seed=seed,
                     **rule)


def _without(name: str, estimate: float, why: str, **rule) -> Effect:
    return Effect(name, float(estimate) if np.isfinite(estimate) else 0.0, None, None, why=why, **rule)


# ---------------------------------------------------------------------------------------------- 01: Sec. 2.1


def _cube(counts: pd.DataFrame, value: str) -> tuple[np.ndarray, list, list]:
    """``counts[value]`` as an array (runs, α, k) with the sorted α and k."""
    alphas, ks = sorted(counts["alpha"].unique()), sorted(counts["k"].unique())
    table = counts.pivot_table(index="run", columns=["alpha", "k"], values=value, dropna=False)
    table = table.reindex(columns=pd.MultiIndex.from_product([alphas, ks]))
    return table.to_numpy(dtype=np.float64).reshape(len(table), len(alphas), len(ks)), alphas, ks


def active_component_effects(counts: pd.DataFrame, *, seed: int = 0) -> dict[str, Evidence]:
    """Sec. 2.1 from the rows of :func:`.peste2017.spectra_and_counts` (one per α, k, run).

    ``saturates``: |count at the smallest α − count at the next α| (mean over runs and k), which the claim puts
    below one component (:data:`COUNT_MARGIN`). ``independent_of_k``: the count at the largest k minus at the
    smallest (mean over runs and α), below one component. ``aligned``: the alignment of the active principal
    directions with the coordinate axes (:func:`replab.geometry.axis_alignment`) minus that of the same means
    turned by a random rotation, above 0.
    """
    active, alphas, ks = _cube(counts, "active")
    out = {}
    by_alpha = active.mean(axis=(0, 2))
    name = "|Δ active count| over the last step of α towards 0 (components)"
    rule = {"null": COUNT_MARGIN, "side": "less"}
    out["saturates"] = Evidence(
        _without(name, 0.0, "one α: no step to measure", **rule) if len(alphas) < 2 else
        _effect(name, lambda c: abs(c[:, 0].mean() - c[:, 1].mean()), [active], ("seeds",), seed=seed, **rule),
        {"alphas": alphas, "mean_active_by_alpha": by_alpha.round(2).tolist(), "runs": active.shape[0]})
    name = f"active count at k = {ks[-1]} minus at k = {ks[0]} (components)"
    by_k = {f"α={a:g}": active[:, i].mean(0).round(2).tolist() for i, a in enumerate(alphas)}
    out["independent_of_k"] = Evidence(
        _without(name, 0.0, "one latent size: nothing to compare", **rule) if len(ks) < 2 else
        _effect(name, lambda c: (c[:, :, -1] - c[:, :, 0]).mean(), [active], ("seeds",), seed=seed, **rule),
        {"latent_dims": ks, "mean_active_by_alpha_and_k": by_k})
    aligned = _cube(counts, "alignment")[0].reshape(active.shape[0], -1)
    turned = _cube(counts, "alignment_rotated")[0].reshape(active.shape[0], -1)
    keep = np.isfinite(aligned).all(0) & np.isfinite(turned).all(0)   # NaN: a model without active component
    name = "alignment of the active principal directions with the axes minus under a random rotation"
    out["aligned"] = Evidence(
        _without(name, 0.0, "no model with an active component") if not keep.any() else
        _effect(name, lambda a, t: (a - t).mean(), [aligned[:, keep], turned[:, keep]], ("seeds",), seed=seed),
        {"mean_alignment": float(np.nanmean(aligned)), "mean_alignment_rotated": float(np.nanmean(turned)),
         "share_pca_count_equals_axis_count": float((counts["active"] == counts["active_axes"]).mean())})
    return out


# ---------------------------------------------------------------------------------------------- 02: Fig. 2 right


def likelihood_effects(result, *, seed: int = 0) -> dict[str, Evidence]:
    """Fig. 2 (right) from :func:`.peste2017.likelihoods`, per test digit, averaged over k and repeats.

    ``tightens``: gap log p(x) − bound at the smallest α minus at the largest (below 0). ``noisier``: the ratio of
    the root-mean-square spread over repeats of each digit's log p(x) estimate, smallest α over largest (above 1).
    ``below``: the smallest mean gap over (k, α) (above 0: the bound lies below the estimate).
    """
    ll, bound = result.log_likelihood, result.renyi_bound          # (k, α, run, repeat, digit)
    alphas, units = list(result.alphas), ("seeds", "test digits")
    gaps = (ll - bound).mean(axis=3)                                # (k, α, run, digit)
    gap = gaps.mean(axis=0)                                         # (α, run, digit)
    out = {}
    name = f"gap log p(x) − bound at α = {alphas[0]:g} minus at α = {alphas[-1]:g} (nats)"
    out["tightens"] = Evidence(
        _without(name, 0.0, "one α: nothing to compare", side="less") if len(alphas) < 2 else
        _effect(name, lambda a, b: a.mean() - b.mean(), [gap[0], gap[-1]], units, seed=seed, side="less"),
        {"alphas": alphas, "mean_gap_nats": gap.mean(axis=(1, 2)).round(3).tolist()})
    name = f"spread of the log p(x) estimate at α = {alphas[0]:g} over at α = {alphas[-1]:g}"
    n_repeats = ll.shape[3]
    spread = ll.var(axis=3, ddof=1).mean(axis=0) if n_repeats > 1 else None   # (α, run, digit)
    rule = {"null": 1.0, "side": "greater"}
    out["noisier"] = Evidence(
        _without(name, 1.0, "one α or one repeat: no spread to compare", **rule) if spread is None or len(alphas) < 2
        else _effect(name, lambda a, b: np.sqrt(a.mean() / b.mean()), [spread[0], spread[-1]], units, seed=seed,
                     **rule),
        {"alphas": alphas, "n_repeats": n_repeats, "rms_std_over_repeats_nats":
         None if spread is None else np.sqrt(spread.mean(axis=(1, 2))).round(4).tolist()})
    cells = gaps.transpose(2, 3, 0, 1).reshape(gaps.shape[2], gaps.shape[3], -1)   # (run, digit, k·α)
    out["below"] = Evidence(
        _effect("smallest mean gap log p(x) − bound over (k, α) (nats)", lambda g: g.mean(axis=(0, 1)).min(),
                [cells], units, seed=seed),
        {"min_gap_nats": float(cells.mean(axis=(0, 1)).min())})
    return out


# ---------------------------------------------------------------------------------------------- 03: Sec. 2.2


def probe_effects(result, *, seed: int = 0) -> dict[str, Evidence]:
    """Sec. 2.2 and Fig. 3 from :func:`.peste2017_probes.probe_accuracies`, at the last snapshot, from each test
    digit's outcome; accuracies are means over runs, digits and the latent sizes k.

    ``accuracy``: the accuracy of the probe on the means (above :data:`PROBE_ACCURACY_FLOOR`). ``beats_pixels``:
    that minus the pixel probe's (above 0). ``variances``: means and variances minus means (above 0).
    ``larger_k``: largest k minus smallest, averaged over the three feature kinds (above 0). ``alpha``: the range
    over α of the accuracy on the means minus the gain of the variances at the probed α (below 0: α matters less
    than the variances).
    """
    correct, a1 = result.correct, result.alpha
    ks = sorted(k for a, k, kind in correct if a == a1 and kind == "means")
    stack = {kind: np.stack([correct[(a1, k, kind)] for k in ks], -1).astype(np.float64)   # (run, digit, k)
             for kind in ("means", "means+variances", "samples")}
    means, both = stack["means"], stack["means+variances"]
    pixels = np.tile(np.asarray(result.pixels["correct"], dtype=np.float64), (means.shape[0], 1))
    units = ("seeds", "test digits")
    by_k = {kind: dict(zip(ks, s.mean(axis=(0, 1)).round(4).tolist())) for kind, s in stack.items()}
    out = {"accuracy": Evidence(
        _effect("accuracy of the probe on the means", lambda m: m.mean(), [means], units, seed=seed,
                null=PROBE_ACCURACY_FLOOR),
        {"means_by_k": by_k["means"]})}
    out["beats_pixels"] = Evidence(
        _effect("accuracy on the means minus on the pixels", lambda m, p: m.mean() - p.mean(), [means, pixels],
                units, seed=seed),
        {"means_by_k": by_k["means"], "pixels": round(float(pixels.mean()), 4)})
    out["variances"] = Evidence(
        _effect("accuracy on means and variances minus on the means", lambda m, b: b.mean() - m.mean(),
                [means, both], units, seed=seed),
        {"means_by_k": by_k["means"], "means_and_variances_by_k": by_k["means+variances"]})
    name = f"accuracy at k = {ks[-1]} minus at k = {ks[0]}, mean over the feature kinds"
    out["larger_k"] = Evidence(
        _without(name, 0.0, "one latent size: nothing to compare") if len(ks) < 2 else
        _effect(name, lambda *s: np.mean([x[..., -1].mean() - x[..., 0].mean() for x in s]), list(stack.values()),
                units, seed=seed),
        {"accuracy_by_kind_and_k": by_k})
    alphas = sorted({a for a, k, kind in correct if kind == "means" and k in ks})
    swept = np.stack([np.stack([correct[(a, k, "means")] for k in ks], -1) for a in alphas], -1).astype(np.float64)
    name = "range over α of the accuracy on the means minus the gain of the variances"
    by_alpha = swept.mean(axis=(0, 1, 2))
    out["alpha"] = Evidence(
        _without(name, 0.0, "one α: nothing to compare", side="less") if len(alphas) < 2 else
        _effect(name, lambda s, m, b: np.ptp(s.mean(axis=(0, 1, 2))) - (b.mean() - m.mean()), [swept, means, both],
                units, seed=seed, side="less"),
        {"alphas": alphas, "means_accuracy_by_alpha": by_alpha.round(4).tolist(),
         "gain_of_variances": round(float(both.mean() - means.mean()), 4)})
    return out


# ---------------------------------------------------------------------------------------------- 04: Sec. 2.3


def geodesic_effects(paths: pd.DataFrame, *, seed: int = 0) -> dict[str, Evidence]:
    """Figs. 4 and 5 from the rows of :func:`.peste2017.geodesic_pairs` (one per run and pair of digits).

    ``variance_rise``: the share of separated dimensions whose σ rises along the geodesic above both ends (above
    one half). ``samples``: the mean spread of decoded samples along the geodesic over that along the line (above
    1). ``sharper``: the sharpness of the decoded geodesic's means minus the straight line's (above 0).
    ``shorter`` and ``legacy``: the smallest ratio over all pairs of the line's and of the public code's
    semicircles' Fisher–Rao length to the geodesic's (above 1).
    """
    def grid(column: str) -> np.ndarray:
        return paths.pivot(index="run", columns="pair", values=column).to_numpy(dtype=np.float64)

    units = ("seeds", "pairs of digits")
    rising, separated = grid("dims_rising"), grid("dims_separated")
    out = {"variance_rise": Evidence(
        _without("share of separated dimensions whose σ rises", 0.5, "no dimension whose means are a σ apart",
                 null=0.5) if separated.sum() == 0 else
        _effect("share of separated dimensions whose σ rises", lambda r, s: r.sum() / max(s.sum(), 1.0),
                [rising, separated], units, seed=seed, null=0.5),
        {"dims_rising": int(rising.sum()), "dims_separated": int(separated.sum())})}
    geo, line = grid("sample_spread_geodesic"), grid("sample_spread_line")
    out["samples"] = Evidence(
        _effect("pixel spread of samples along the geodesic over along the line", lambda g, l_: g.mean() / l_.mean(),
                [geo, line], units, seed=seed, null=1.0),
        {"mean_pixel_spread_geodesic": float(geo.mean()), "mean_pixel_spread_line": float(line.mean())})
    sharp_geo, sharp_line = grid("sharpness_geodesic"), grid("sharpness_means")
    out["sharper"] = Evidence(
        _effect("largest-step share of the geodesic's means minus the line's", lambda g, m: (g - m).mean(),
                [sharp_geo, sharp_line], units, seed=seed),
        {"largest_step_share_geodesic": float(sharp_geo.mean()), "largest_step_share_means": float(sharp_line.mean()),
         "share_of_pairs_sharper": float((sharp_geo > sharp_line).mean())})
    for key, column, what in (("shorter", "line_over_geodesic", "straight line"),
                              ("legacy", "legacy_over_geodesic", "public code's semicircles")):
        ratio = grid(column)
        out[key] = Evidence(
            _effect(f"smallest ratio of the {what}'s length to the geodesic's", lambda r: r.min(), [ratio], units,
                    seed=seed, null=1.0),
            {"mean_ratio": float(ratio.mean()), "min_ratio": float(ratio.min()), "max_ratio": float(ratio.max())})
    return out
