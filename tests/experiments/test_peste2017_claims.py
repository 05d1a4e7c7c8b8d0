"""The effects of the Peşte et al. (2017) claims, on made-up measurements whose effects are known in closed form."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from replab.evidence import rule
from replab.experiments import peste2017_claims as pc


def _counts(active, alignment=0.9, rotated=0.4) -> pd.DataFrame:
    """Rows (α, k, run) with ``active[run][α][k]`` components."""
    active = np.asarray(active, dtype=float)
    rows = [{"alpha": a, "k": k, "run": r, "active": active[r, i, j], "active_axes": active[r, i, j] + 1,
             "alignment": alignment, "alignment_rotated": rotated}
            for r in range(active.shape[0]) for i, a in enumerate((0.0, 0.5, 1.0)) for j, k in enumerate((30, 50))]
    return pd.DataFrame(rows)


def test_active_counts_that_stay_put_reproduce_and_counts_that_grow_with_k_do_not():
    flat = pc.active_component_effects(_counts(np.full((3, 3, 2), 12.0)), seed=0)
    assert flat["saturates"].effect.estimate == 0 and rule(flat["saturates"].effect) == "reproduced"
    assert flat["independent_of_k"].effect.estimate == 0 and rule(flat["independent_of_k"].effect) == "reproduced"
    assert flat["aligned"].effect.estimate == pytest.approx(0.5) and rule(flat["aligned"].effect) == "reproduced"
    assert flat["aligned"].measured["share_pca_count_equals_axis_count"] == 0.0
    grows = np.zeros((3, 3, 2))
    grows[:, :, 0], grows[:, :, 1] = 10, 13                      # three more components at k = 50, every run
    grows[:, 0] += [[4, 4], [5, 5], [6, 6]]                      # and the count still climbs at the last α step
    out = pc.active_component_effects(_counts(grows, alignment=0.3, rotated=0.3), seed=0)
    assert out["independent_of_k"].effect.estimate == pytest.approx(3.0)
    assert rule(out["independent_of_k"].effect) == "not reproduced"
    assert out["saturates"].effect.estimate == pytest.approx(5.0) and rule(out["saturates"].effect) == "not reproduced"
    assert out["saturates"].effect.n == {"seeds": 3}
    assert out["aligned"].effect.estimate == pytest.approx(0.0) and rule(out["aligned"].effect) != "reproduced"


def _likelihoods(gap_by_alpha, spread_by_alpha, n_runs=3, n_digits=40, seed=0):
    """Axes (k, α, run, repeat, digit); repeats at ±spread around each digit's value, so the spread is exact."""
    rng = np.random.default_rng(seed)
    base = rng.normal(-100, 5, size=(2, 3, n_runs, 1, n_digits))
    offsets = np.array([-1.0, 0.0, 1.0]).reshape(1, 1, 1, 3, 1)
    spread = np.asarray(spread_by_alpha, dtype=float).reshape(1, 3, 1, 1, 1)
    ll = base + offsets * spread
    bound = ll - np.asarray(gap_by_alpha, dtype=float).reshape(1, 3, 1, 1, 1)
    return SimpleNamespace(alphas=(0.0, 0.5, 1.0), latent_dims=(30, 50), log_likelihood=ll, renyi_bound=bound)


def test_likelihood_effects_in_closed_form():
    out = pc.likelihood_effects(_likelihoods(gap_by_alpha=[2.0, 3.0, 5.0], spread_by_alpha=[0.2, 0.15, 0.1]))
    assert out["tightens"].effect.estimate == pytest.approx(-3.0) and rule(out["tightens"].effect) == "reproduced"
    assert out["noisier"].effect.estimate == pytest.approx(2.0) and rule(out["noisier"].effect) == "reproduced"
    assert out["noisier"].measured["rms_std_over_repeats_nats"] == pytest.approx([0.2, 0.15, 0.1])
    assert out["below"].effect.estimate == pytest.approx(2.0) and rule(out["below"].effect) == "reproduced"
    assert out["below"].effect.n == {"seeds": 3, "test digits": 40}
    quieter = pc.likelihood_effects(_likelihoods(gap_by_alpha=[5.0, 3.0, 2.0], spread_by_alpha=[0.1, 0.1, 0.3]))
    assert rule(quieter["tightens"].effect) == rule(quieter["noisier"].effect) == "not reproduced"


def test_one_run_resamples_the_digits_only_and_one_repeat_gives_no_interval():
    one_run = pc.likelihood_effects(_likelihoods([2.0, 3.0, 5.0], [0.2, 0.15, 0.1], n_runs=1))
    assert one_run["tightens"].effect.n == {"seeds": 1, "test digits": 40}
    assert "test digits" in one_run["tightens"].effect.method and "seeds" not in one_run["tightens"].effect.method
    data = _likelihoods([2.0, 3.0, 5.0], [0.2, 0.15, 0.1])
    data.log_likelihood, data.renyi_bound = data.log_likelihood[:, :, :, :1], data.renyi_bound[:, :, :, :1]
    noisier = pc.likelihood_effects(data)["noisier"].effect
    assert noisier.low is None and "repeat" in noisier.why and rule(noisier) == "inconclusive"


def _outcomes(rate, n_runs=3, n_digits=400, seed=0):
    """Boolean outcomes (runs, digits) right at exactly ``rate`` on every run (shuffled per run)."""
    rng = np.random.default_rng(seed)
    right = np.arange(n_digits) < round(rate * n_digits)
    return np.stack([rng.permutation(right) for _ in range(n_runs)])


def test_probe_effects_from_each_digits_outcome():
    rates = {(1.0, 30, "means"): 0.93, (1.0, 50, "means"): 0.95, (1.0, 30, "means+variances"): 0.96,
             (1.0, 50, "means+variances"): 0.97, (1.0, 30, "samples"): 0.80, (1.0, 50, "samples"): 0.81,
             (0.0, 30, "means"): 0.935, (0.0, 50, "means"): 0.945}
    correct = {key: _outcomes(r, n_digits=4000, seed=i) for i, (key, r) in enumerate(rates.items())}
    result = SimpleNamespace(correct=correct, alpha=1.0, pixels={"correct": _outcomes(0.90, 1, 4000)[0]})
    out = pc.probe_effects(result)
    assert out["accuracy"].effect.estimate == pytest.approx(0.94)
    assert out["accuracy"].effect.null == pc.PROBE_ACCURACY_FLOOR and rule(out["accuracy"].effect) == "reproduced"
    assert out["beats_pixels"].effect.estimate == pytest.approx(0.04)
    assert out["variances"].effect.estimate == pytest.approx(0.025) and rule(out["variances"].effect) == "reproduced"
    assert out["larger_k"].effect.estimate == pytest.approx((0.02 + 0.01 + 0.01) / 3)
    # the accuracy on the means is 0.94 at both α: no range, against a gain of 0.025 from the variances
    assert out["alpha"].effect.estimate == pytest.approx(-0.025) and rule(out["alpha"].effect) == "reproduced"
    assert out["alpha"].measured["means_accuracy_by_alpha"] == pytest.approx([0.94, 0.94])
    assert out["accuracy"].effect.n == {"seeds": 3, "test digits": 4000}
    correct[(0.0, 30, "means")] = _outcomes(0.80, n_digits=4000)
    correct[(0.0, 50, "means")] = _outcomes(0.80, n_digits=4000, seed=9)
    swayed = pc.probe_effects(result)["alpha"].effect
    assert swayed.estimate == pytest.approx(0.14 - 0.025) and rule(swayed) == "not reproduced"


def _paths(n_runs=3, n_pairs=20, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_runs * n_pairs
    return pd.DataFrame({"run": np.repeat(np.arange(n_runs), n_pairs), "pair": np.tile(np.arange(n_pairs), n_runs),
                         "dims_rising": rng.integers(6, 9, n), "dims_separated": np.full(n, 10),
                         "sample_spread_geodesic": rng.uniform(1.9, 2.1, n), "sample_spread_line": np.ones(n),
                         "sharpness_geodesic": np.full(n, 0.3), "sharpness_means": np.full(n, 0.2),
                         "line_over_geodesic": rng.uniform(1.5, 2.5, n), "legacy_over_geodesic": np.full(n, 1.05)})


def test_geodesic_effects_per_run_and_pair():
    paths = _paths()
    out = pc.geodesic_effects(paths)
    share = paths["dims_rising"].sum() / paths["dims_separated"].sum()
    assert out["variance_rise"].effect.estimate == pytest.approx(share) and share > 0.6
    assert rule(out["variance_rise"].effect) == "reproduced"
    assert out["samples"].effect.estimate == pytest.approx(paths["sample_spread_geodesic"].mean())
    assert out["sharper"].effect.estimate == pytest.approx(0.1)
    shorter = out["shorter"].effect
    assert shorter.estimate == pytest.approx(paths["line_over_geodesic"].min())
    assert shorter.low == pytest.approx(shorter.estimate) and rule(shorter) == "reproduced"
    assert out["legacy"].effect.estimate == pytest.approx(1.05)
    assert out["samples"].effect.n == {"seeds": 3, "pairs of digits": 20}
    none = paths.assign(dims_rising=0, dims_separated=0)
    rise = pc.geodesic_effects(none)["variance_rise"].effect
    assert rise.low is None and rule(rise) == "inconclusive"


def test_same_seed_same_intervals():
    a = pc.geodesic_effects(_paths(), seed=4)["samples"].effect
    b = pc.geodesic_effects(_paths(), seed=4)["samples"].effect
    assert (a.low, a.high) == (b.low, b.high)
