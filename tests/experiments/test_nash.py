"""Tests of the section-level experiments of Nash et al. (2019) (:mod:`replab.experiments.nash`), at the smoke
profile's sizes, each in its own artifact cache."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from replab import profiles
from replab.experiments import nash, nash_nets
from replab.inversion import LAYERS


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_nats_table_bound_is_the_paired_difference_of_per_image_nlls():
    nll = {"CONV1": np.array([[100.0, 102.0], [98.0, 100.0]]), "FC3": np.full((2, 2), 150.0)}
    h_x = np.full((2, 2), 180.0)
    t = nash.nats_table(nll, h_x, n_dims=196)
    assert t.loc["CONV1", "I bound (nats)"] == pytest.approx(80.0)
    assert t.loc["FC3", "I bound (bits/dim)"] == pytest.approx(30.0 / (196 * math.log(2)))
    assert list(t["NCE (nats)"]) == [-100.0, -150.0]
    assert t.loc["FC3", "I bound stderr"] == pytest.approx(0.0)           # a constant difference, paired
    assert t.loc["CONV1", "stderr"] == pytest.approx(np.std([99.0, 101.0], ddof=1) / math.sqrt(2))


def test_pages_1_and_2_resolve_one_models_experiment_with_each_profile_value():
    one = profiles.page_experiments("nash2019/01-inverting-layers")
    two = profiles.page_experiments("nash2019/02-representation-space")
    assert one[0] is two[0] is nash.Models
    assert one[1] is nash.InvertingLayers and two[1] is nash.RepresentationSpace
    quick = profiles.resolve(nash.Models, "quick")
    assert (quick.n_train, quick.factor, quick.clf_steps, quick.inv_steps, quick.n_filters) == (2000, 2, 400, 150, 8)
    dyn = profiles.resolve(nash.TrainingDynamics, "quick")
    assert dyn.snapshots == (0, 100, 1000) and dyn.layers == ("FC3",) and dyn.inv_steps == 120
    # comparative claims: at least three seeds at quick on every page
    assert quick.n_seeds >= 3 and dyn.n_seeds >= 3 and profiles.resolve(nash.GlobalPooling, "quick").n_seeds >= 3


def test_layer_experiments_share_the_classifier_and_measure_every_layer(cache_dir):
    m = dataclasses.replace(profiles.resolve(nash.Models, "smoke"), n_train=64, n_test=16, clf_steps=3,
                            inv_steps=2, n_filters=2, n_seeds=2)
    t = nash.trained_classifier(m)
    again = nash.trained_classifier(m)
    assert t.specs == again.specs and t.accuracies == again.accuracies
    assert [s.seed for s in t.specs] == [0, 1] and {s.data_seed for s in t.specs} == {0}
    assert not torch.equal(t.models[0].layer1.weight, t.models[1].layer1.weight)
    assert t.data.test.shape[1:] == (1, 7, 7) and t.inversion["n_filters"] == 2 and t.settings(1)["seed"] == 1
    inv = nash.layer_inversions(t)
    assert list(inv.table.index) == list(LAYERS)
    assert inv.h_x.shape == (2, 16) and all(v.shape == (2, 16) for v in inv.nll.values())
    bound = inv.h_x.mean() - inv.table["nats/image"]
    np.testing.assert_allclose(bound.values, inv.table["I bound (nats)"].values, rtol=1e-9)
    e = nash.InvertingLayers(mse_steps=2, n_show=2, n_measure=3)
    show, columns = nash.samples_and_reconstructions(t, inv, e)
    assert list(columns) == [f"{l} samples" for l in LAYERS] + [f"{l} MSE" for l in LAYERS]
    assert columns["FC3 samples"].shape == (2, 2, 1, 7, 7) and columns["FC3 MSE"].shape[0] == 2
    samples = nash.layer_samples(t, e)
    assert samples["CONV1"].shape == (2, 3, 2, 1, 7, 7) and samples["CONV1"].dtype == torch.uint8
    check = nash.representation_space(t, nash.RepresentationSpace(n_images=3, n_draws=2))
    assert list(check.table.index) == list(nash.TABLE1_LAYERS)
    assert check.distances["FC3"]["IM-NN"].shape == (2, 3)
    assert (check.table["IM-NN"] <= check.table["IM-S"] + 1e-9).all()   # the closest sample is at most any one
    cols = nash.neighbours_and_samples(t, check)
    assert list(cols)[:2] == ["CONV1 1NN", "CONV1 samples"] and cols["CONV1 1NN"].shape == (3, 1, 7, 7)
    # the 1NN image is a training image nearest (L1 at the layer) to the test image, by brute force
    h = t.model.extract(t.data.full(check.images), "FC3").flatten(1).double()
    ht = t.model.extract(t.data.full(t.data.train), "FC3").flatten(1).double()
    best = torch.stack([(ht - row).abs().sum(1).min() for row in h])
    got = t.model.extract(t.data.full(cols["FC3 1NN"]), "FC3").flatten(1).double()
    torch.testing.assert_close((got - h).abs().sum(1), best, rtol=1e-4, atol=1e-5)


def test_global_pooling_and_training_dynamics_return_one_row_per_case(cache_dir):
    g = dataclasses.replace(profiles.resolve(nash.GlobalPooling, "smoke"), n_train=48, n_test=12, clf_steps=2,
                            hidden_units=8, inv_steps=2, n_filters=2, mse_steps=2, n_show=2, n_draws=1,
                            n_position=3, n_seeds=2)
    nets = nash_nets.affnist_classifiers(g)
    assert list(nets.accuracies().index) == list(nash.POOLING) and len(nets.specs) == 2
    result = nash_nets.global_pooling(nets, g)
    assert list(result.table.index) == list(nash.POOLING) and result.chance > 0
    assert result.panels["global pooling samples"].shape == (2, 1, 1, 10, 10)
    assert result.errors["convolutional"].shape == (2, 3) and result.nll["fully connected"].shape == (2, 12)
    d = dataclasses.replace(profiles.resolve(nash.TrainingDynamics, "smoke"), n_train=48, n_test=12,
                            snapshots=(0, 2), n_overfit=16, inv_steps=2, n_filters=2, n_seeds=2)
    data, specs = nash_nets.dynamics_classifiers(d)
    specs, second = specs
    assert second["regular"].seed == 1 and second["regular"].data_seed == 0
    assert specs["overfitted"].dropout == 0.0 and specs["overfitted"].batch_size == 16
    assert specs["regular"].steps == 2 and specs["regular"].snapshots == (0, 2)
    dyn = nash_nets.training_dynamics(data, (specs, second), d)
    assert dyn.nll["overfitted", 2, "FC3"].shape == (2, 12)
    dyn = dyn.table
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
