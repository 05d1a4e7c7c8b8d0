"""Tests of the section-level experiments of Nash et al. (2019) (:mod:`replab.experiments.nash`), at the smoke
profile's sizes, each in its own artifact cache."""
import dataclasses
import math

import pytest
import torch

from replab import profiles
from replab.experiments import nash
from replab.inversion import LAYERS


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_nats_table_bound_is_difference_of_cross_entropies():
    def ce(n):
        return {"nats_per_image": n, "stderr_nats": 1.0, "bits_per_dim": n / (196 * math.log(2)), "nce_nats": -n,
                "n_dims": 196}

    t = nash.nats_table({"CONV1": ce(100.0), "FC3": ce(150.0)}, ce(180.0))
    assert t.loc["CONV1", "I bound (nats)"] == pytest.approx(80.0)
    assert t.loc["FC3", "I bound (bits/dim)"] == pytest.approx(30.0 / (196 * math.log(2)))
    assert list(t["NCE (nats)"]) == [-100.0, -150.0]


def test_pages_1_and_2_resolve_one_models_experiment_with_each_profile_value():
    one = profiles.page_experiments("nash2019/01-inverting-layers")
    two = profiles.page_experiments("nash2019/02-representation-space")
    assert one[0] is two[0] is nash.Models
    assert one[1] is nash.InvertingLayers and two[1] is nash.RepresentationSpace
    quick = profiles.resolve(nash.Models, "quick")
    assert (quick.n_train, quick.factor, quick.clf_steps, quick.inv_steps, quick.n_filters) == (2000, 2, 400, 150, 8)
    dyn = profiles.resolve(nash.TrainingDynamics, "quick")
    assert dyn.snapshots == (0, 100, 1000) and dyn.layers == ("FC3",) and dyn.inv_steps == 120


def test_layer_experiments_share_the_classifier_and_measure_every_layer(cache_dir):
    m = dataclasses.replace(profiles.resolve(nash.Models, "smoke"), n_train=64, n_test=16, clf_steps=3,
                            inv_steps=2, n_filters=2)
    t = nash.trained_classifier(m)
    again = nash.trained_classifier(m)
    assert t.spec == again.spec and t.accuracy == again.accuracy
    assert t.data.test.shape[1:] == (1, 7, 7) and t.inversion["n_filters"] == 2
    inv = nash.layer_inversions(t)
    assert list(inv.table.index) == list(LAYERS)
    bound = inv.h_x["nats_per_image"] - inv.table["nats/image"]
    torch.testing.assert_close(torch.tensor(bound.values), torch.tensor(inv.table["I bound (nats)"].values))
    show, columns = nash.samples_and_reconstructions(t, inv, nash.InvertingLayers(mse_steps=2, n_show=2))
    assert list(columns) == [f"{l} samples" for l in LAYERS] + [f"{l} MSE" for l in LAYERS]
    assert columns["FC3 samples"].shape == (2, 2, 1, 7, 7) and columns["FC3 MSE"].shape[0] == 2
    check = nash.representation_space(t, nash.RepresentationSpace(n_images=3, n_draws=2))
    assert list(check.table.index) == list(LAYERS)
    assert (check.table["IM-NN"] <= check.table["IM-S"] + 1e-9).all()   # the closest sample is at most any one
    cols = nash.neighbours_and_samples(t, check)
    assert list(cols)[:2] == ["CONV1 1NN", "CONV1 samples"] and cols["CONV1 1NN"].shape == (3, 1, 7, 7)
    # the 1NN image is a training image nearest (L1 at the layer) to the test image, by brute force
    h = t.model.extract(t.data.full(check.images), "LOGITS").flatten(1).double()
    ht = t.model.extract(t.data.full(t.data.train), "LOGITS").flatten(1).double()
    best = torch.stack([(ht - row).abs().sum(1).min() for row in h])
    got = t.model.extract(t.data.full(cols["LOGITS 1NN"]), "LOGITS").flatten(1).double()
    torch.testing.assert_close((got - h).abs().sum(1), best, rtol=1e-4, atol=1e-5)


def test_global_pooling_and_training_dynamics_return_one_row_per_case(cache_dir):
    g = dataclasses.replace(profiles.resolve(nash.GlobalPooling, "smoke"), n_train=48, n_test=12, clf_steps=2,
                            hidden_units=8, inv_steps=2, n_filters=2, mse_steps=2, n_show=2, n_draws=1)
    nets = nash.affnist_classifiers(g)
    assert list(nets.accuracies().index) == list(nash.POOLING)
    result = nash.global_pooling(nets, g)
    assert list(result.table.index) == list(nash.POOLING) and result.chance > 0
    assert result.panels["global pooling samples"].shape == (2, 1, 1, 10, 10)
    d = dataclasses.replace(profiles.resolve(nash.TrainingDynamics, "smoke"), n_train=48, n_test=12,
                            snapshots=(0, 2), n_overfit=16, inv_steps=2, n_filters=2)
    data, specs = nash.dynamics_classifiers(d)
    assert specs["overfitted"].dropout == 0.0 and specs["overfitted"].batch_size == 16
    assert specs["regular"].steps == 2 and specs["regular"].snapshots == (0, 2)
    dyn = nash.training_dynamics(data, specs, d)
    assert len(dyn) == 2 * 2 * len(d.layers)
    assert set(dyn.columns) >= {"classifier", "layer", "updates", "test accuracy", "NCE (nats)", "stderr"}
    # the snapshot at 0 updates of both classifiers is the same initialisation: the same inversion model
    start = dyn[dyn.updates == 0].set_index("classifier")["NCE (nats)"]
    assert start["regular"] == pytest.approx(start["overfitted"], rel=1e-4)


def test_figures_have_one_panel_per_layer_and_the_chance_line():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from replab.plotting import nash as nplot

    dyn = pd.DataFrame([{"classifier": c, "layer": l, "updates": u, "NCE (nats)": -float(u), "stderr": 1.0}
                        for c in ("regular", "overfitted") for l in ("FC3", "LOGITS") for u in (0, 10, 100)])
    fig = nplot.nce_over_training(dyn, ("FC3", "LOGITS"))
    assert [ax.get_title() for ax in fig.axes] == ["FC3", "LOGITS"]
    assert all(len(ax.get_legend().get_texts()) == 2 for ax in fig.axes)
    table = pd.DataFrame({"net": list(nash.POOLING), "NCE (nats)": [-1.0, -2.0, -3.0], "stderr": [0.1] * 3,
                          "centroid error (px)": [1.0, 5.0, 2.0]}).set_index("net")
    fig = nplot.nce_and_position(table, chance=6.0)
    assert len(fig.axes) == 2 and any(list(line.get_ydata()) == [6.0, 6.0] for line in fig.axes[1].lines)
