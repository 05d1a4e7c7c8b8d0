"""Effects, intervals and the verdict rule, against scipy and closed forms."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from replab.evidence import Effect, binomial_interval, bootstrap, effect_of, rule


def _effect(low, high, **kw):
    return Effect("d", (low + high) / 2, low, high, **kw)


@pytest.mark.parametrize("low, high, kw, verdict", [
    (0.1, 0.5, {}, "reproduced"),
    (-0.1, 0.5, {}, "inconclusive"),
    (-0.5, -0.1, {}, "not reproduced"),
    (-0.5, -0.1, {"side": "less"}, "reproduced"),
    (0.1, 0.5, {"side": "less"}, "not reproduced"),
    (1.2, 1.5, {"null": 1.0}, "reproduced"),              # a ratio above 1
    (0.8, 1.1, {"null": 1.0}, "inconclusive"),
    (5.0, 8.0, {"smallest": 20.0}, "not reproduced"),      # positive but far short of the paper's magnitude
    (5.0, 25.0, {"smallest": 20.0}, "reproduced"),
    (-1.0, 25.0, {"smallest": 20.0}, "inconclusive"),
])
def test_rule(low, high, kw, verdict):
    assert rule(_effect(low, high, **kw)) == verdict


def test_an_effect_without_interval_says_why_and_is_inconclusive():
    with pytest.raises(ValueError, match="say why"):
        Effect("d", 1.0, None, None)
    assert rule(Effect("d", 1.0, None, None, why="one run")) == "inconclusive"


@pytest.mark.parametrize("kw, message", [
    ({"estimate": float("nan"), "low": 0, "high": 1}, "finite"),
    ({"estimate": 0.5, "low": 1.0, "high": 0.0}, "not an interval"),
    ({"estimate": 0.5, "low": 0.0, "high": 1.0, "side": "up"}, "side must be"),
    ({"estimate": 0.5, "low": 0.0, "high": 1.0, "smallest": -1.0}, "wrong side of the null"),
])
def test_bad_effects_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        Effect("d", **kw)


def test_one_axis_bootstrap_matches_scipy_percentile_interval():
    rng = np.random.default_rng(1)
    x = rng.normal(0.3, 1.0, size=400)
    est, lo, hi = bootstrap(np.mean, x, n_resamples=4000, seed=3)
    ref = stats.bootstrap((x,), np.mean, n_resamples=4000, method="percentile", random_state=4).confidence_interval
    assert est == pytest.approx(x.mean())
    # two independent Monte Carlo estimates of the same quantiles: agree to a few per cent of the width
    width = ref.high - ref.low
    assert abs(lo - ref.low) < 0.06 * width and abs(hi - ref.high) < 0.06 * width
    # and the normal-theory interval of a mean, which the percentile bootstrap approaches for n = 400
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert lo == pytest.approx(x.mean() - 1.96 * se, abs=0.1 * se * 3.92)
    assert hi == pytest.approx(x.mean() + 1.96 * se, abs=0.1 * se * 3.92)


def test_paired_bootstrap_keeps_pairs_together():
    """Two arrays sharing a large per-unit offset: the paired interval of their difference is narrow, because the
    offset cancels inside every resample; resampling them independently would not."""
    rng = np.random.default_rng(0)
    offset = rng.normal(0, 10, size=200)
    a = offset + 1.0 + rng.normal(0, 0.1, size=200)
    b = offset + rng.normal(0, 0.1, size=200)
    est, lo, hi = bootstrap(lambda a, b: (a - b).mean(), a, b, seed=0)
    assert est == pytest.approx(1.0, abs=0.05)
    assert hi - lo < 0.1


def test_two_way_bootstrap_widens_with_seed_spread():
    """Seeds × examples: a spread between seeds must widen the interval compared with examples alone."""
    rng = np.random.default_rng(2)
    examples = rng.normal(0, 1, size=(1, 300))
    seeds = rng.normal(0, 1, size=(4, 1))
    values = 0.5 + seeds + examples
    _, lo1, hi1 = bootstrap(np.mean, values, axes=(1,), seed=0)
    _, lo2, hi2 = bootstrap(np.mean, values, axes=(0, 1), seed=0)
    assert hi2 - lo2 > 2 * (hi1 - lo1)


def test_bootstrap_is_seeded_and_checks_its_input():
    x = np.arange(10.0)
    assert bootstrap(np.mean, x, seed=5) == bootstrap(np.mean, x, seed=5)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap(np.mean, np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="at least 2 units"):
        bootstrap(np.mean, np.array([1.0]))
    with pytest.raises(ValueError, match="paired units must line up"):
        bootstrap(lambda a, b: a.mean() - b.mean(), np.ones(3), np.ones(4))


def test_effect_of_counts_units():
    e = effect_of("gap", np.mean, np.ones((3, 50)) + np.arange(3)[:, None], axes=(0, 1),
                  unit_names=("seeds", "examples"))
    assert e.n == {"seeds": 3, "examples": 50} and "seeds and examples" in e.method
    assert rule(e) == "reproduced"


def test_binomial_interval_is_clopper_pearson():
    e = binomial_interval("accuracy", 80, 100, null=0.5)
    # Clopper-Pearson ends from the beta quantiles (closed form)
    assert e.low == pytest.approx(stats.beta.ppf(0.025, 80, 21))
    assert e.high == pytest.approx(stats.beta.ppf(0.975, 81, 20))
    assert rule(e) == "reproduced"
    assert rule(binomial_interval("accuracy", 52, 100)) == "inconclusive"
