"""Tests of the claims' effects of the Nash et al. (2019) pages (:mod:`replab.experiments.nash_effects`) on
synthetic per-image arrays whose effects are known in closed form."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from replab.evidence import rule
from replab.experiments import nash_effects as ne
from replab.inversion import LAYERS


def _noisy(mean, shape=(3, 40), scale=0.5, seed=0):
    return mean + np.random.default_rng(seed).normal(0.0, scale, shape)


def test_inversion_effects_are_the_closed_form_differences_of_means():
    means = {"CONV1": 100.0, "CONV2": 120.0, "FC3": 125.0, "LOGITS": 127.0}     # NLLs: falls 20, 5, 2
    nll = {layer: _noisy(m, seed=i) for i, (layer, m) in enumerate(means.items())}
    h_x = _noisy(140.0, seed=9)
    eff = ne.inversion_effects(nll, h_x)
    got = {layer: nll[layer].mean() for layer in LAYERS}
    assert eff["falls"].estimate == pytest.approx(min(got["CONV2"] - got["CONV1"], got["FC3"] - got["CONV2"],
                                                      got["LOGITS"] - got["FC3"]))
    assert eff["largest"].estimate == pytest.approx(got["CONV2"] - got["CONV1"]
                                                    - max(got["FC3"] - got["CONV2"], got["LOGITS"] - got["FC3"]))
    assert eff["bound"].estimate == pytest.approx(h_x.mean() - got["LOGITS"])
    assert all(rule(e) == "reproduced" for e in eff.values())
    assert eff["falls"].n == {"seeds": 3, "test images": 40}


def test_a_rise_of_information_through_the_layers_is_not_reproduced():
    nll = {layer: _noisy(130.0 - 10 * i, seed=i) for i, layer in enumerate(LAYERS)}
    eff = ne.inversion_effects(nll, _noisy(140.0, seed=7))
    assert eff["falls"].estimate == pytest.approx(-10.0, abs=0.5) and rule(eff["falls"]) == "not reproduced"


def test_paired_effect_pairs_images_and_takes_one_seed():
    base = np.random.default_rng(1).normal(0.0, 50.0, (1, 30))       # large spread between images, shared
    eff = ne.paired_effect("gap", lambda a, b: float(b.mean() - a.mean()), [base, base + 1.0])
    assert eff.estimate == pytest.approx(1.0) and eff.low == pytest.approx(1.0) and eff.high == pytest.approx(1.0)
    assert eff.n == {"test images": 30, "seeds": 1}


def test_sample_measures_and_effects_on_copies_and_noise():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (6, 1, 5, 5), dtype=torch.uint8)
    train = torch.randint(0, 256, (20, 1, 5, 5), dtype=torch.uint8)
    copies = images[None, :, None].expand(2, 6, 2, 1, 5, 5).clone()
    noise = torch.randint(0, 256, (2, 6, 2, 1, 5, 5), dtype=torch.uint8)
    samples = {"CONV1": copies, "CONV2": copies, "FC3": noise, "LOGITS": noise}
    m = ne.sample_measures(images, samples, train)
    assert np.allclose(m["variability"]["CONV1"], 0.0) and np.allclose(m["to input"]["CONV2"], 0.0)
    nearest = min(float((train[j].float() - images[0].float()).abs().mean()) / 255 for j in range(20))
    assert m["1NN pixels"].shape == (2, 6) and m["1NN pixels"][1, 0] == pytest.approx(nearest, rel=1e-5)
    style = (np.full((2, 6), 0.5), np.full((2, 6), 1.0))
    eff = ne.sample_effects(m, style)
    means = [m["variability"][layer].mean() for layer in LAYERS]
    assert eff["variability"].estimate == pytest.approx(spearmanr(range(4), means).statistic)
    assert eff["conv1"].estimate == pytest.approx(0.0) and rule(eff["conv1"]) == "reproduced"
    assert eff["style"].estimate == pytest.approx(0.5)


def test_slant_features_of_logits_samples_that_copy_the_input_beat_the_class():
    torch.manual_seed(1)
    train = torch.randint(0, 256, (30, 1, 6, 6), dtype=torch.uint8)
    labels = torch.arange(30) % 3
    images, test_labels = train[:4], labels[:4]
    same = images[None, :, None].expand(2, 4, 3, 1, 6, 6)
    to_samples, to_class = ne.style_distances(images, test_labels, same, train, labels)
    assert np.allclose(to_samples, 0.0) and (to_class > 0).all() and to_class.shape == (2, 4)
    # a class absent from the training images: the distance is to all of them
    _, to_all = ne.style_distances(images, torch.full((4,), 7), same, train, labels)
    assert np.isfinite(to_all).all()


def test_table1_pooling_and_dynamics_effects_are_their_ratios_and_gaps():
    d = {layer: {"1NN": _noisy(1.0, scale=0.05, seed=i), "IM-S": _noisy(0.5 + 0.4 * i, scale=0.05, seed=10 + i),
                 "IM-NN": _noisy(0.4 + 0.1 * i, scale=0.05, seed=20 + i)}
         for i, layer in enumerate(("CONV1", "CONV2", "FC3"))}
    eff = ne.table1_effects(SimpleNamespace(distances=d))
    ratio = {layer: {k: d[layer][k].mean() / d[layer]["1NN"].mean() for k in ("IM-S", "IM-NN")} for layer in d}
    assert eff["im-nn"].estimate == pytest.approx(max(r["IM-NN"] for r in ratio.values()))
    assert eff["im-s-conv"].estimate == pytest.approx(max(ratio["CONV1"]["IM-S"], ratio["CONV2"]["IM-S"]))
    assert eff["im-s-fc3"].estimate == pytest.approx(ratio["FC3"]["IM-S"]) and eff["im-s-fc3"].side == "greater"
    assert rule(eff["im-nn"]) == "reproduced" and rule(eff["im-s-fc3"]) == "reproduced"

    nets = ("convolutional", "global pooling", "fully connected")
    result = SimpleNamespace(errors=dict(zip(nets, (_noisy(2.0), _noisy(7.0), _noisy(3.0)))),
                             nll=dict(zip(nets, (_noisy(100.0), _noisy(104.0), _noisy(110.0)))))
    eff = ne.pooling_effects(result)
    assert eff["position"].estimate == pytest.approx(result.errors["global pooling"].mean()
                                                     - result.errors["fully connected"].mean())
    assert eff["order"].estimate == pytest.approx(result.nll["global pooling"].mean()
                                                  - result.nll["convolutional"].mean())

    nce = {("regular", 0): -110.0, ("regular", 10): -100.0, ("regular", 100): -104.0,
           ("overfitted", 0): -110.0, ("overfitted", 10): -99.0, ("overfitted", 100): -101.0}
    dyn = SimpleNamespace(nll={(c, s, "FC3"): _noisy(-v, seed=s) for (c, s), v in nce.items()})
    eff = ne.dynamics_effects(dyn, (0, 10, 100), ("FC3",))
    means = {s: dyn.nll["regular", s, "FC3"].mean() for s in (0, 10, 100)}
    assert eff["rise-fall"].estimate == pytest.approx(min(means[0] - means[10], means[100] - means[10]))
    assert eff["overfit"].estimate == pytest.approx(dyn.nll["regular", 100, "FC3"].mean()
                                                    - dyn.nll["overfitted", 100, "FC3"].mean())
    two = ne.dynamics_effects(dyn, (0, 100), ("FC3",))
    assert two["rise-fall"].low is None and rule(two["rise-fall"]) == "inconclusive"
