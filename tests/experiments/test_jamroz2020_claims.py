"""The effects of the Jamroż et al. (2020) pages, on synthetic tables whose answers are known."""
import numpy as np
import pandas as pd
import pytest
import torch

from replab.evidence import rule
from replab.experiments import jamroz2020 as jamroz
from replab.experiments import jamroz2020_claims as jc
from replab.experiments import jamroz2020_vae as jv


def _cnn_table(values: dict, n_groups: int = 3, depth: int = 8, seed: int = 0) -> pd.DataFrame:
    """Rows (setting..., group, layer, mean, components): ``values[setting]`` is the layer profile of a setting,
    each group adding its own small noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for setting, profile in values.items():
        for g in range(n_groups):
            for layer in range(1, depth + 1):
                rows.append({**dict(setting), "group": g, "layer": layer,
                             "mean": profile[layer - 1] + 0.01 * rng.standard_normal(), "components": 2.0})
    return pd.DataFrame(rows)


def test_groups_split_consecutive_seeds_and_refuse_uneven_splits():
    assert jamroz.groups(list(range(6)), 3) == [[0, 1], [2, 3], [4, 5]]
    assert jamroz.groups(list(range(4)), 1) == [[0, 1, 2, 3]]
    with pytest.raises(ValueError, match="n_groups: expected a positive divisor of the 6 nets"):
        jamroz.groups(list(range(6)), 4)


def test_over_groups_and_grouped_read_the_same_values():
    re = _cnn_table({(("condition", "a"),): np.arange(8.0)}, n_groups=3)
    bands = jc.over_groups(re, ["condition"])
    arr = jc.grouped(re, {"condition": "a"})
    assert arr.shape == (3, 8)
    assert np.allclose(bands["mean"], arr.mean(0)) and np.allclose(bands["min"], arr.min(0))
    assert np.allclose(bands["max"], arr.max(0)) and (bands["min"] <= bands["mean"]).all()
    assert jc.grouped(re, {"condition": "a"}, [7, 8]).shape == (3, 2)
    with pytest.raises(ValueError, match="no rows for setting"):
        jc.grouped(re, {"condition": "b"})


def test_memorisation_effect_is_the_upper_layer_difference():
    true, random = np.full(8, 0.1), np.array([1, 1, 1, 1, 2.1, 3.1, 4.1, 5.1])
    re = _cnn_table({(("condition", "true labels"),): true, (("condition", "random labels"),): random})
    acc = pd.DataFrame({"condition": ["true labels", "random labels"], "train accuracy": [1.0, 1.0],
                        "test accuracy": [0.9, 0.1]})
    effects, measured = jc.memorisation_effects(re, acc, depth=8)
    e = effects["memorising-nets-more-complex"]
    assert e.estimate == pytest.approx(3.5, abs=0.02) and e.low > 3 and rule(e) == "reproduced"
    assert e.n == {"groups": 3} and measured["memorising-nets-more-complex"]["upper_layers"] == [5, 6, 7, 8]
    # no difference: the interval straddles 0
    same = _cnn_table({(("condition", "true labels"),): true, (("condition", "random labels"),): true}, seed=1)
    assert rule(jc.memorisation_effects(same, acc, depth=8)[0]["memorising-nets-more-complex"]) == "inconclusive"


def test_regularisation_effects_on_a_known_grid(monkeypatch):
    base = np.ones(8)
    middle = np.array([0, 0, 1, 1, 1, 1, 0, 0.0])
    values = {}
    for w, raise_by in ((32, 2.0), (64, 0.5)):
        values[(("width", w), ("regulariser", "none"))] = base + (w == 32) * middle
        values[(("width", w), ("regulariser", "dropout"))] = base + (w == 32) * middle + raise_by
        values[(("width", w), ("regulariser", "augmentation"))] = base - 0.3
    re = _cnn_table(values)
    r = jamroz.Regularisation(dataset="mnist10k", depth=8, n_train=50, epochs=1, batch_size=25, lr=0.01, n_nets=3,
                              n_groups=3, n_images=20, d=2, n_sweeps=6, burn_in=2, thin=2, n_samples=100,
                              widths=(32, 64), regularisers=("none", "augmentation", "dropout"))
    # nets are stand-ins whose correctness on 200 test images is known: dropout loses at most one image
    rng = np.random.default_rng(0)
    runs = {(w, reg): [0.5 * (reg == "dropout") + 10.0 * i + w for i in range(3)]
            for w in r.widths for reg in r.regularisers}
    table = {w + 10.0 * i: torch.tensor((rng.random(200) < 0.9).astype(float)) for w in r.widths for i in range(3)}
    flipped = {key + 0.5: torch.cat([torch.zeros(1), v[1:]]) for key, v in table.items()}  # at most one more error
    monkeypatch.setattr(jc, "correctness", lambda run, split: {**table, **flipped}[run])
    effects, measured = jc.regularisation_effects(runs, re, r)
    assert effects["dropout-raises-complexity"].estimate == pytest.approx(1.25, abs=0.02)
    assert rule(effects["dropout-raises-complexity"]) == "reproduced"
    assert effects["dropout-effect-depends-on-width"].estimate == pytest.approx(1.5, abs=0.02)
    assert effects["augmentation-remedies-narrow"].estimate == pytest.approx(0.3 + 1.0, abs=0.02)
    consistent = effects["augmentation-consistent"]
    assert consistent.side == "less" and consistent.estimate == pytest.approx(-0.3, abs=0.02)
    assert rule(consistent) == "reproduced"
    general = effects["complexity-not-needed-to-generalise"]
    assert general.null == -jc.NONINFERIORITY and general.n == {"nets": 3, "test images": 200}
    want = np.mean([float(flipped[k + 0.5].mean() - table[k].mean()) for k in table])
    assert general.estimate == pytest.approx(want) and rule(general) == "reproduced"
    assert measured["augmentation-remedies-narrow"]["middle_layers"] == [3, 4, 5, 6]
    # without dropout nets, those claims have no interval and say why
    r2 = jamroz.Regularisation(**{**r.__dict__, "regularisers": ("none", "augmentation")})
    effects, _ = jc.regularisation_effects(runs, re, r2)
    assert effects["dropout-raises-complexity"].low is None and "leave out" in effects["dropout-raises-complexity"].why


def _vae_table(values: dict, seeds=(0, 1, 2), noise: float = 0.01) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame([{"objective": o, "beta": b, "seed": s, "mean": v + noise * rng.standard_normal(),
                          "min": v - 0.1, "max": v + 0.1, "components": 3.0}
                         for (o, b), v in values.items() for s in seeds])


VAE = dict(dataset="mnist10k", arch="mlp", widths=(8, 8, 8, 8), latent_dim=6, betas=(0.1, 10.0, 100.0),
           n_train=200, epochs=2, batch_size=50, lr=1e-3, n_codes=30, n_sweeps=6, burn_in=2, thin=2, n_samples=200,
           n_seeds=3)


def test_latent_and_dependence_effects_on_known_sweeps():
    v = jv.VAESweep(**VAE)
    re = _vae_table({("β-VAE", 0.1): 4.0, ("β-VAE", 10.0): 1.0, ("β-VAE", 100.0): 0.01,
                     ("MMD-VAE", 0.1): 4.0, ("MMD-VAE", 10.0): 5.0, ("MMD-VAE", 100.0): 1.8}, noise=0.001)
    effects, measured = jc.latent_effects(re, v)
    fall, gap = effects["beta-vae-collapses"], effects["mmd-vae-stays-rich"]
    assert fall.null == 1.0 and fall.side == "less" and fall.estimate == pytest.approx(0.01 / 4.0, rel=0.2)
    assert gap.estimate == pytest.approx(1.79, abs=0.01) and rule(fall) == rule(gap) == "reproduced"
    assert measured["mmd-vae-stays-rich"]["re_mmd_vae"] == pytest.approx([4.0, 5.0, 1.8], abs=0.01)
    # the Fréchet distances: dropping the dependence costs 1 for the MMD-VAE and the weak β-VAE, 0 at strong β
    fd = {("MMD-VAE", 100.0, "p(z*)"): 3.0, ("MMD-VAE", 100.0, "p_ind(z*)"): 4.0,
          ("β-VAE", 0.1, "p(z*)"): 2.0, ("β-VAE", 0.1, "p_ind(z*)"): 3.0,
          ("β-VAE", 100.0, "p(z*)"): 5.0, ("β-VAE", 100.0, "p_ind(z*)"): 5.0}
    quality = pd.DataFrame([{"objective": o, "beta": b, "seed": s, "codes": c, "fd": x + 0.01 * s}
                            for (o, b, c), x in fd.items() for s in range(3)])
    effects, measured = jc.dependence_effects(re, quality, v)
    assert effects["mmd-samples-need-dependence"].estimate == pytest.approx(1.0)
    assert effects["beta-vae-small-beta-samples-need-dependence"].estimate == pytest.approx(1.0)
    assert effects["beta-vae-strong-beta-samples-indistinguishable"].estimate == pytest.approx(1.0)
    assert all(rule(e) == "reproduced" for e in effects.values())
    assert measured["mmd-samples-need-dependence"]["fd_factorial"] == pytest.approx(4.01)
    # without a classifier the sample claims say why they have no interval
    effects, _ = jc.dependence_effects(re, None, v)
    assert effects["mmd-samples-need-dependence"].low is None and effects["beta-vae-decorrelates"].low is not None


def test_sampling_effect_is_the_smallest_gain_over_beta():
    v = jv.VAESweep(**VAE)
    rows = []
    for s in range(3):
        for b, gain in zip(v.betas, (2.0, 0.5, 1.0)):
            rows.append({"objective": "MMD-VAE", "beta": b, "seed": s, "codes": "prior", "sweep": -1,
                         "fd": 4.0 + 0.01 * s, "confidence": 0.6})
            rows += [{"objective": "MMD-VAE", "beta": b, "seed": s, "codes": "DP-GMM p(z*|c)", "sweep": t,
                      "fd": 4.0 - gain + 0.1 * t, "confidence": 0.7} for t in range(3)]
    effects, measured = jc.sampling_effects(pd.DataFrame(rows), v)
    fd, conf = effects["dpgmm-codes-better-fd"], effects["dpgmm-codes-more-confident"]
    assert fd.estimate == pytest.approx(0.5 - 0.1 + 0.01) and rule(fd) == "reproduced"   # mean over sweeps: +0.1
    assert conf.estimate == pytest.approx(0.1) and fd.n == {"seeds": 3}
    assert measured["dpgmm-codes-better-fd"]["fd_prior"] == pytest.approx([4.01] * 3)
    assert jc.sampling_effects(None, v)[0]["dpgmm-codes-better-fd"].why
