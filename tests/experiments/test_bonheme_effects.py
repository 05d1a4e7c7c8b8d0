"""Tests of the effects behind the Bonheme & Grześ claims (replab.experiments.bonheme_effects): statistics against
closed forms and scipy, and the verdicts the rule gives on constructed measurements (a tie never passes)."""
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import mannwhitneyu, spearmanr

from replab import models
from replab.evidence import rule
from replab.experiments import bonheme_effects as F
from replab.experiments import bonheme_retraining as R
from replab.objectives import reconstruction_loss


def test_seed_statistics_read_the_weakest_case():
    v = np.array([[1.0, 3.0, -2.0], [3.0, 5.0, 0.0]])  # seed means per case: 2, 4, -1
    assert F.min_of_seed_means(v) == pytest.approx(-1.0)
    assert F.max_abs_of_seed_means(v) == pytest.approx(4.0)
    assert F.mean_of_all(v) == pytest.approx(v.mean())
    assert F.ratio_of_means([1.0, 3.0], [4.0, 4.0]) == pytest.approx(0.5)


def test_over_seeds_gives_no_interval_for_one_seed_and_a_bootstrap_for_several():
    one = F.over_seeds("x", F.mean_of_all, np.array([0.4]))
    assert one.low is None and "one seed" in one.why and rule(one) == "inconclusive"
    e = F.over_seeds("x", F.mean_of_all, np.array([0.3, 0.5, 0.4]))
    assert e.low <= e.estimate <= e.high and e.n == {"seeds": 3} and rule(e) == "reproduced"
    flat = F.over_seeds("x", F.mean_of_all, np.zeros(3))
    assert flat.low == flat.high == 0.0 and rule(flat) == "inconclusive"  # no effect never passes


def test_auc_matches_mann_whitney_and_a_perfect_separation_is_reproduced():
    rng = np.random.default_rng(0)
    p, q = rng.normal(1, 1, 12), rng.normal(0, 1, 9)
    u = mannwhitneyu(p, q).statistic
    assert F.auc(p, q) == pytest.approx(u / (len(p) * len(q)))
    e = F.stratified_auc_effect("auc", [0.5, 0.6, 0.7], [0.01, 0.02])
    assert e.estimate == e.low == e.high == 1.0 and rule(e) == "reproduced"
    assert F.stratified_auc_effect("auc", [0.5, 0.6], [0.01]).low is None


def _summary(encoder, decoder, steps=(160, 320, 480, 640)):
    return pd.DataFrame({"encoder": encoder, "decoder": decoder}, index=pd.Index(steps, name="step"))


def test_encoder_first_a_tie_does_not_pass():
    lead = {s: {"a": _summary([0.96, 0.97, 0.98, 0.99], [0.1, 0.2, 0.5, 0.9])} for s in range(3)}
    out = F.encoder_first(lead, 0.95, 800)
    assert out["converges"].estimate == pytest.approx((800 - 160) / 800) and rule(out["converges"]) == "reproduced"
    assert out["before"].estimate == pytest.approx(0.86) and rule(out["before"]) == "reproduced"
    tie = {s: {"a": _summary([0.5, 0.6, 0.7, 0.8], [0.1, 0.2, 0.3, 0.4])} for s in range(3)}
    assert F.encoder_first(tie, 0.95, 800)["converges"].estimate == 0.0
    assert rule(F.encoder_first(tie, 0.95, 800)["converges"]) != "reproduced"


def _sweep(losses_by_seed, spread=0.5, n_examples=20):
    """Sweep rows whose per-example losses scatter by ``spread`` around each row's loss (mean exactly the loss),
    independently for every row."""
    rng = np.random.default_rng(0)

    def scatter(v):
        noise = rng.normal(size=n_examples)
        return v + spread * (noise - noise.mean()) / noise.std()

    rows = []
    for seed, losses in losses_by_seed.items():
        for order in ("innermost", "outermost", "innermost + mean/variance"):
            rows += [{"seed": seed, "order": order, "n_retrained": k, "reconstruction_loss": v, "reference": 1.0,
                      "example_losses": scatter(v)} for k, v in zip((0, 2, 4, 6), losses)]
    return pd.DataFrame(rows)


def test_retraining_reads_rank_correlations_over_seeds():
    falling = R.retraining(_sweep({s: [9.0, 8.0, 7.0, 1.0] for s in range(3)}))
    assert falling["innermost"].estimate == pytest.approx(-1.0) and rule(falling["innermost"]) == "reproduced"
    assert falling["latent"].estimate == pytest.approx(0.0, abs=1e-12) and rule(falling["latent"]) == "reproduced"
    # ranks 4, 1, 3, 2 against 1, 2, 3, 4: ρ = 1 − 6·14/60 = −0.4, entirely short of −0.8
    weak = R.retraining(_sweep({s: [9.0, 1.0, 8.0, 7.0] for s in range(3)}))
    assert weak["innermost"].estimate == pytest.approx(-0.4) and rule(weak["innermost"]) == "not reproduced"


def test_retraining_intervals_resample_seeds_and_test_examples_together():
    # identical seeds: a bootstrap over seeds alone would give a zero-width interval; over the examples too, the
    # noisy per-image losses (spread 5 around losses 1 apart) move the ranks, so the interval has width
    noisy = R.retraining(_sweep({s: [4.0, 3.0, 2.0, 1.0] for s in range(3)}, spread=5.0, n_examples=8))
    inner = noisy["innermost"]
    assert inner.estimate == pytest.approx(-1.0)
    assert inner.low < inner.high and inner.n == {"seeds": 3, "examples": 8}
    assert "seeds and examples" in inner.method
    # every image at its row's loss: resampling images changes nothing and the interval is a point
    flat = _sweep({s: [4.0, 3.0, 2.0, 1.0] for s in range(3)}, n_examples=8)
    flat["example_losses"] = [np.full(8, v) for v in flat["reconstruction_loss"]]
    exact = R.retraining(flat)["innermost"]
    assert exact.low == exact.high == pytest.approx(-1.0)
    # the statistic agrees with scipy's Spearman, ties included
    v = np.array([[3.0, 1.0, 1.0, 2.0], [1.0, 2.0, 3.0, 4.0]])
    assert R.mean_rank_correlation(v[:, :, None]) == pytest.approx(
        np.mean([spearmanr(np.arange(4), r).statistic for r in v]))
    one = R.retraining(_sweep({0: [4.0, 3.0, 2.0, 1.0]}))
    assert one["innermost"].low is None and "one seed" in one["innermost"].why


def _accuracy(own, other, seeds=(0, 1, 2), n_classes=4):
    rows = []
    for seed in seeds:
        for target, source in (("a", "a"), ("a", "b"), ("b", "b"), ("b", "a")):
            acc = own if target == source else other
            rows += [{"classifier": "gradient_boosting", "factor": f, "n_classes": n_classes, "target": target,
                      "source": source, "seed": seed, "test_accuracy": acc + 0.01 * seed} for f in ("f1", "f2")]
    return pd.DataFrame(rows)


def test_table1_on_par_is_an_equivalence_that_needs_accuracy_above_chance():
    par = F.table1(_accuracy(0.8, 0.79), ["a", "b"], 0.05)
    assert par["on_par"].estimate == pytest.approx(0.01) and rule(par["on_par"]) == "reproduced"
    assert par["measured"]["chance"] == {"a": 0.25, "b": 0.25}
    drop = F.table1(_accuracy(0.8, 0.6), ["a", "b"], 0.05)
    assert rule(drop["on_par"]) == "not reproduced"
    useless = F.table1(_accuracy(0.25, 0.25), ["a", "b"], 0.05)
    assert useless["on_par"].low is None and "chance" in useless["on_par"].why
    assert F.cars3d_exception(None).why == "needs Cars3D and CelebA (full profile)"


def test_shared_factors_signs():
    rows = []
    for seed in range(3):
        for source, accs in (("dsprites", {"shape": 0.7, "scale": 0.5, "posX": 0.3, "posY": 0.3}),
                             ("other", {"shape": 0.5, "scale": 0.45, "posX": 0.45, "posY": 0.45})):
            rows += [{"classifier": "gradient_boosting", "target": "dsprites", "source": source, "seed": seed,
                      "factor": f, "test_accuracy": a + 0.01 * seed * (f == "shape")} for f, a in accs.items()]
    out = F.shared_factors(pd.DataFrame(rows), "other")
    assert out["shape"].estimate == pytest.approx(0.2 - 0.05) and rule(out["shape"]) == "reproduced"
    assert out["positions"].estimate == pytest.approx(-0.15) and rule(out["positions"]) == "reproduced"


def test_generic_encoders_differences_per_seed():
    idx = pd.MultiIndex.from_product([range(3), ["target, other seed", "source", "source, latent retrained"]],
                                     names=["seed", "model"])
    enc = {"target, other seed": 0.95, "source": 0.93, "source, latent retrained": 0.93}
    dec = {"target, other seed": 0.9, "source": 0.1, "source, latent retrained": 0.2}
    parts = pd.DataFrame({"encoder": [enc[m] for _, m in idx], "decoder": [dec[m] for _, m in idx]}, index=idx)
    out = F.generic_encoders(parts, 0.1)
    assert out["encoder"].estimate == pytest.approx(0.02) and rule(out["encoder"]) == "reproduced"
    assert out["decoder"].estimate == pytest.approx(0.8) and rule(out["decoder"]) == "reproduced"
    assert out["retrained_decoder"].estimate == pytest.approx(0.7)


def test_example_losses_average_to_the_reconstruction_loss():
    torch.manual_seed(0)
    model = models.build(models.Conv64Config(image_size=16, widths=(4, 4, 8, 8), hidden=16, latent_dim=3)).eval()
    x = (torch.rand(7, 1, 16, 16) < 0.3).float()
    per = R.example_losses(model, x)
    assert per.shape == (7,) and per.mean() == pytest.approx(reconstruction_loss(model, x), rel=1e-5)


def test_metric_sanity_effects_on_constructed_tables():
    rows = []
    for seed in range(3):
        for n in (50, 970):
            for f in (0.8, 0.5, 0.0):
                c = f + (0.5 if f == 0 and n == 50 else 0.0) + 0.01 * seed
                rows += [{"seed": seed, "n_examples": n, "shared": f, "metric": "CKA", "similarity": c},
                         {"seed": seed, "n_examples": n, "shared": f, "metric": "Procrustes",
                          "similarity": c + (0.3 if f == 0 else 0.02)}]
    ding = pd.DataFrame([{"seed": s, "removed": 0.9, "metric": m, "similarity": v, "variance_kept": 0.5}
                         for s in range(3) for m, v in (("CKA", 0.97), ("Procrustes", 0.75))])
    tests = pd.DataFrame([{"shared": f, "metric": m, "p_value": p} for f, p in ((0.0, 0.4), (0.8, 1 / 201))
                          for m in ("CKA", "Procrustes")])
    out = F.metric_sanity(pd.DataFrame(rows), ding, tests, 200)
    assert out["agree"].estimate == pytest.approx(0.03) and rule(out["agree"]) == "reproduced"
    assert out["overestimates"].estimate == pytest.approx(0.3) and rule(out["overestimates"]) == "reproduced"
    assert out["small"].estimate == pytest.approx(0.22) and rule(out["small"]) == "reproduced"
    assert out["permutation"].estimate == pytest.approx(79 / 200) and rule(out["permutation"]) == "reproduced"


def test_collapse_ratio_and_detector():
    from types import SimpleNamespace

    cols = pd.MultiIndex.from_product([range(3), ["vs collapsed", "vs well-behaved"]])
    by_seed = pd.DataFrame([[0.03, 0.7] * 3, [0.1, 0.3] * 3, [0.02, 0.8] * 3], columns=cols,
                           index=["mean", "variance", "sampled"])
    det = pd.DataFrame({"active_units": [0, 0, 3, 5, 2], "cka_sampled_input": [0.01, 0.05, 0.3, 0.5, 0.2]})
    out = F.collapse(SimpleNamespace(by_seed=by_seed, detectors=det))
    assert out["dark"].estimate == pytest.approx(0.025) and rule(out["dark"]) == "reproduced"
    assert out["detector"].estimate == 1.0 and rule(out["detector"]) == "reproduced"


def test_objectives_effects_and_a_collapsed_fully_connected_pair_gets_no_interval():
    rows = {}
    for seed in range(3):
        for pair in ("A vs A", "A vs B"):
            rows["across objectives", pair, seed] = {"encoder": 0.95, "latent": 0.6, "decoder": 0.5}
        rows["across strengths", "A 1 vs 8", seed] = {"encoder": 0.9, "latent": 0.7 + 0.01 * seed, "decoder": 0.4}
    parts = pd.DataFrame(rows).T.rename_axis(["kind", "pair", "seed"])
    fc = {s: {"parts": {"encoder": 0.8, "latent": 0.5}, "state": {"a": {"final KL": 3.0}, "b": {"final KL": 2.0}}}
          for s in range(3)}
    out = F.objectives(parts, {"clf_by_seed": [[0.8, 0.75]] * 3, "fc_by_seed": fc})
    assert out["encoders"].estimate == pytest.approx(0.35) and rule(out["encoders"]) == "reproduced"
    assert out["strengths"].estimate == pytest.approx(0.19)
    assert out["decoders"].estimate == pytest.approx(0.45)
    assert out["classifier"].estimate == pytest.approx(0.75) and out["classifier"].null == 0.7
    assert out["fully_connected"].estimate == pytest.approx(0.3) and rule(out["fully_connected"]) == "reproduced"
    fc[0]["state"]["a"]["final KL"] = 0.01
    collapsed = F.objectives(parts, {"clf_by_seed": [[0.8, 0.75]] * 3, "fc_by_seed": fc})["fully_connected"]
    assert collapsed.low is None and "collapsed" in collapsed.why


def test_cars3d_exception_reads_the_gap_on_cars3d():
    rows = [{"classifier": "gradient_boosting", "target": "cars3d", "source": src, "seed": seed, "factor": f,
             "test_accuracy": acc} for seed in range(3) for src, acc in (("cars3d", 0.59), ("celeba", 0.42))
            for f in ("elevation", "azimuth")]
    e = F.cars3d_exception(pd.DataFrame(rows))
    assert e.estimate == pytest.approx(0.17) and rule(e) == "reproduced"
