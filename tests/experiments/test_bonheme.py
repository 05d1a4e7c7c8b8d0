"""Tests of the Bonheme & Grześ experiment helpers (replab.experiments.bonheme)."""
import numpy as np
import pandas as pd
import pytest
import torch

from replab import models, profiles
from replab.cache import ArtifactCache
from replab.experiments import bonheme as B
from replab.train import TrainConfig, train

SMALL = models.Conv64Config(image_size=16, widths=(4, 4, 8, 8), hidden=16, latent_dim=3)


def _model(seed=0):
    torch.manual_seed(seed)
    return models.build(SMALL)


def _params_of(model, names):
    return {id(p) for n in names for p in B.layer_module(model, n).parameters()}


def _images(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return B.ImageSet((torch.rand((n, 1, 16, 16), generator=g) < 0.3).to(torch.uint8) * 255, None, (),
                      {"toy": seed, "n": n})


@pytest.fixture
def source_run():
    config = TrainConfig(model=SMALL, objective="beta_vae", dataset="synthetic", n=64, batch_size=16, steps=4,
                         lr=1e-3, seed=0)
    return train(config, cache=False)


# -- freezing, resetting, fine-tuning --------------------------------------------------------------------------------
def test_prepare_transfer_trains_exactly_the_reset_layers_and_resets_them():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layers = ["mean", "variance", "decoder.1"]
    trainable = B.prepare_transfer(model, layers, reset=True, seed=3)
    assert {id(p) for p in trainable} == _params_of(model, layers)
    assert all(not p.requires_grad for n, p in model.named_parameters()
               if id(p) not in _params_of(model, layers))
    after = model.state_dict()
    for key in before:
        changed = not torch.equal(before[key], after[key])
        expected = key.split(".")[0] in ("mean", "variance") or key.startswith("decoder.1.")
        assert changed == expected, key


def test_fine_tuning_without_reset_keeps_weights_and_legacy_flag_freezes_everything():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainable = B.prepare_transfer(model, ["output", "decoder.5"], reset=False)
    assert {id(p) for p in trainable} == _params_of(model, ["output", "decoder.5"])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    legacy = _model()
    assert B.prepare_transfer(legacy, ["output"], reset=False, legacy_freeze_when_not_reset=True) == []
    assert not any(p.requires_grad for p in legacy.parameters())
    # with reset the public script does unfreeze
    assert B.prepare_transfer(_model(), ["output"], reset=True, legacy_freeze_when_not_reset=True)


def test_transfer_changes_only_the_retrained_layers(source_run):
    target = _images()
    layers = B.retrain_schedule(source_run.model, 2, "outermost")
    model = B.transfer(source_run, target, layers, steps=3, batch_size=16, cache=False)
    src = source_run.model.state_dict()
    fresh = _model()
    B.prepare_transfer(fresh, layers, reset=True, seed=0)  # the re-initialisation transfer starts from
    for key, value in model.state_dict().items():
        retrained = key.startswith("output.") or key.startswith("decoder.5.")
        if retrained:
            assert not torch.equal(value, src[key]), key
            assert not torch.equal(value, fresh.state_dict()[key]), key  # trained after the reset
        else:
            assert torch.equal(value, src[key]), key
    again = B.transfer(source_run, target, layers, steps=3, batch_size=16, cache=False)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())


def test_legacy_transfer_returns_the_source_model(source_run):
    model = B.transfer(source_run, _images(), ["decoder.1"], steps=3, reset=False, batch_size=16,
                       legacy_freeze_when_not_reset=True, cache=False)
    assert all(torch.equal(v, source_run.model.state_dict()[k]) for k, v in model.state_dict().items())
    tuned = B.transfer(source_run, _images(), ["decoder.1"], steps=3, reset=False, batch_size=16, cache=False)
    assert not torch.equal(tuned.decoder["1"][0].weight, source_run.model.decoder["1"][0].weight)


def test_transfer_cache_shares_one_entry_per_layer_set(source_run, tmp_path):
    cache = ArtifactCache(tmp_path)
    target = _images()
    B.transfer(source_run, target, ["decoder.1", "output"], steps=2, batch_size=16, cache=cache)
    B.transfer(source_run, target, ["output", "decoder.1"], steps=2, batch_size=16, cache=cache)
    assert cache.hits == 1


def test_retrain_schedule_orders_and_errors():
    model = _model()
    assert B.decoder_layers(model) == ["decoder.1", "decoder.2", "decoder.3", "decoder.4", "decoder.5", "output"]
    assert B.retrain_schedule(model, 2, "innermost") == ["decoder.1", "decoder.2"]
    assert B.retrain_schedule(model, 2, "outermost") == ["output", "decoder.5"]
    assert B.retrain_schedule(model, 0) == []
    with pytest.raises(ValueError, match="k must be an integer in \\[0, 6\\]"):
        B.retrain_schedule(model, 7)
    with pytest.raises(ValueError, match="order must be"):
        B.retrain_schedule(model, 1, "middle")
    with pytest.raises(ValueError, match="not a trainable layer"):
        B.layer_module(model, "sampled")


# -- measurements -----------------------------------------------------------------------------------------------------
def test_reconstruction_loss_is_the_bernoulli_cross_entropy_at_the_mean():
    model = _model().eval()
    x = _images(10).float()
    with torch.no_grad():
        logits = model.decode(model.encode(x)[0])
        p = torch.sigmoid(logits).double()
        expected = -(x * torch.log(p) + (1 - x) * torch.log1p(-p)).sum(dim=(1, 2, 3)).mean()
    assert B.reconstruction_loss(model, x, batch_size=3) == pytest.approx(float(expected), rel=1e-5)


def test_active_units_counts_dimensions_with_varying_means():
    model = _model().eval()
    x = _images(32).float()
    with torch.no_grad():
        model.mean.weight.zero_()
        assert B.active_units(model, x) == 0  # constant posterior means: no active unit
        model.mean.weight[1] = 1000.0
    assert B.active_units(model, x) == 1
    scores = B.collapse_scores(model, x)
    assert set(scores) == {"active_units", "cka_sampled_mean", "cka_sampled_input"}


def test_similarity_min_and_diagonal():
    g = torch.Generator().manual_seed(0)
    a = {"input": torch.randn(40, 12, generator=g), "encoder.1": torch.randn(40, 6, generator=g),
         "mean": torch.randn(40, 3, generator=g)}
    b = {k: v + 0.5 * torch.randn(v.shape, generator=g) for k, v in a.items()}
    t = B.similarity(a, b)
    assert set(t) == {"linear_cka", "procrustes", "min"}
    assert np.allclose(t["min"].to_numpy(), np.minimum(t["linear_cka"].to_numpy(), t["procrustes"].to_numpy()))
    assert list(t["min"].index) == list(a)
    self_table = B.similarity(a, a)["min"]
    assert np.allclose(B.diagonal(self_table).to_numpy(), 1.0, atol=1e-5)
    averaged = B.pairwise_mean({"a": a, "b": b}, [("a", "b"), ("b", "a")])
    assert np.allclose(averaged["linear_cka"].to_numpy(), (t["linear_cka"].to_numpy() +
                                                           t["linear_cka"].to_numpy().T) / 2)


def test_model_similarity_restricts_layers_and_a_model_matches_itself():
    a, b = _model(0).eval(), _model(1).eval()
    x = _images(24).float()
    layers = ["decoder.1", "output"]
    t = B.model_similarity(a, b, x, layers)
    assert list(t["min"].index) == layers and list(t["min"].columns) == layers
    full = B.similarity(B.representations(a, x), B.representations(b, x))
    assert np.allclose(t["linear_cka"].to_numpy(), full["linear_cka"].loc[layers, layers].to_numpy())
    assert np.allclose(B.diagonal(B.model_similarity(a, a, x, layers)["min"]).to_numpy(), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="not layers of both models"):
        B.model_similarity(a, b, x, ["decoder.9"])


def test_sampled_noise_is_per_model_and_reproducible():
    a, b = _model(0), _model(1)
    x = _images(8).float()
    assert B.noise_seed(a) == B.noise_seed(_model(0)) != B.noise_seed(b)
    with torch.no_grad():  # two collapsed posteriors, both N(0, I): their samples must still differ
        for m in (a, b):
            m.mean.weight.zero_(), m.mean.bias.zero_(), m.variance.weight.zero_(), m.variance.bias.zero_()
    ra, rb = B.representations(a, x), B.representations(b, x)
    assert not torch.allclose(ra["sampled"], rb["sampled"])
    assert torch.equal(ra["sampled"], B.representations(a, x)["sampled"])
    assert torch.equal(B.representations(a, x, seed=5)["sampled"], B.representations(b, x, seed=5)["sampled"])


def test_part_means_and_first_step_above():
    names = ["input", "encoder.1", "encoder.2", "mean", "variance", "sampled", "decoder.1", "output"]
    table = pd.DataFrame(np.diag([1, 0.9, 0.7, 0.2, 0.4, 0.5, 0.3, 0.1]), index=names, columns=names)
    assert B.part_means(table) == pytest.approx({"encoder": 0.8, "latent": 0.3, "sampled": 0.5, "decoder": 0.2})
    summary = pd.DataFrame({"encoder": [0.96, 0.99], "decoder": [0.5, 0.9]}, index=[10, 20])
    assert B.first_step_above(summary, 0.95, 30) == {"encoder": 10, "decoder": 30}


def test_factor_classification_table_shape_and_oracle(rng):
    y = np.stack([np.zeros(120, int), rng.integers(0, 3, 120), rng.integers(0, 4, 120)], axis=1)
    z = np.concatenate([np.eye(3)[y[:, 1]], np.eye(4)[y[:, 2]]], axis=1) + 0.01 * rng.normal(size=(120, 7))
    table = B.factor_classification(z[:80], y[:80], z[80:], y[80:], ("color", "shape", "pos"), gb_estimators=5,
                                    lr_cs=2)
    assert table.shape == (4, 5)  # the constant factor is skipped; 2 factors × 2 classifiers
    assert list(table["factor"]) == ["shape", "shape", "pos", "pos"]
    assert (table["test_accuracy"] == 1.0).all()
    noise = B.factor_classification(rng.normal(size=(80, 7)), y[:80], rng.normal(size=(40, 7)), y[80:],
                                    ("color", "shape", "pos"), gb_estimators=5, lr_cs=2)
    assert (noise["test_accuracy"] < 0.8).all()
    with pytest.raises(ValueError, match="one column per factor"):
        B.factor_classification(z, y[:, :2], z, y[:, :2], ("a", "b", "c"))
    with pytest.raises(ValueError, match="classifiers: unknown"):
        B.factor_classification(z, y, z, y, ("a", "b", "c"), classifiers=("svm",))


def test_objective_params_and_model_set():
    S = profiles.resolve("bonheme2022.models", "quick")
    assert B.objective_params(S, "beta_tc_vae", 2) == {"beta": 2.0, "dataset_size": S.n_train}
    assert B.objective_params(S, "annealed_vae", 5)["iteration_threshold"] == round(S.steps / 3)
    assert B.objective_params(S, "dip_vae_ii", 10) == {"lambda_od": 10.0}
    with pytest.raises(ValueError, match="objective"):
        B.objective_params(S, "vae", 1)
    members = B.model_set(S)
    assert len(members) == len(B.OBJECTIVES) * (len(S.seeds) + len(S.other_seeds))
    assert B.train_config(S, members[0]).objective == "beta_vae"
    assert B.snapshot_steps(S) == (160, 320, 480, 640, 800)
    tc = B.train_config(S, B.Member("beta_tc_vae", 2.0, 0))
    assert tc.objective == "beta_tc_vae" and tc.objective_params["beta"] == 2.0  # not the public config's β-VAE
    # the papers' grid (Locatello et al.'s settings, Bonheme & Grześ 2023 App. C, Tables 5 and 6)
    full = profiles.resolve("bonheme2022.models", "full")
    assert full.steps == 300_000 and full.seeds == [0, 1, 2, 3, 4] and full.other_seeds == [0, 1, 2, 3, 4]
    assert (full.batch_size, full.lr, full.image_size, full.parallel) == (64, 1e-4, 64, True)
    assert full.strengths["beta_vae"] == [1, 2, 4, 6, 8]
    assert full.strengths["beta_tc_vae"] == [1, 2, 4, 6, 8]
    assert full.strengths["annealed_vae"] == [5, 10, 25, 50, 75]
    assert full.strengths["dip_vae_ii"] == [1, 2, 5, 10, 20]
    assert B.objective_params(full, "annealed_vae", 5)["iteration_threshold"] == 100_000
    assert B.objective_params(full, "annealed_vae", 5)["gamma"] == 1000.0
    assert len(B.model_set(full)) == 4 * 5 * 5  # objectives × strengths × seeds


def test_paper_datasets_use_real_files_when_present_else_the_stand_in(tmp_path):
    with pytest.warns(UserWarning, match="symsol.*using symsol_like instead"):
        assert B.paper_datasets(["dsprites", "symsol"], root=tmp_path) == ["dsprites", "symsol_like"]
    with pytest.warns(UserWarning, match="cars3d.*left out"):
        assert B.paper_datasets(["dsprites", "cars3d"], root=tmp_path) == ["dsprites"]
    images = np.random.default_rng(0).integers(0, 256, (50, 64, 64), dtype=np.uint8)
    np.savez(tmp_path / "symsol_reduced.npz", images=images, labels=np.repeat(np.arange(5), 10))
    assert B.paper_datasets(["dsprites", "symsol"], root=tmp_path) == ["dsprites", "symsol"]
    with pytest.raises(ValueError, match="unknown dataset 'mnist-1k'"):
        B.paper_datasets(["mnist-1k"])
    full = profiles.resolve("bonheme2022.models", "full")
    assert full.datasets == ["dsprites", "cars3d", "smallnorb"] and full.transfer_datasets == ["dsprites", "symsol"]
    # Cars3D is in colour: its VAEs take three channels, the grey datasets one
    assert B.train_config(full, B.Member("beta_vae", 1.0, 0, "cars3d")).model.channels == 3
    assert B.train_config(full, B.Member("beta_vae", 1.0, 0, "smallnorb")).model.channels == 1


def test_load_images_takes_the_whole_split_when_it_is_smaller(tmp_path, monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, (50, 64, 64), dtype=np.uint8)
    np.savez(tmp_path / "symsol_reduced.npz", images=images, labels=np.repeat(np.arange(5), 10))
    monkeypatch.setenv("REPLAB_DATA", str(tmp_path))
    got = B.load_images("symsol", 1000, image_size=32, split="test", cache=ArtifactCache(tmp_path / "cache"))
    assert got.images.shape == (5, 1, 32, 32)  # the stratified 10% test split: one image per shape
    assert got.factor_names == ("label",) and sorted(got.factor_classes[:, 0].tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="n must be a positive integer"):
        B.load_images("dsprites", 0)


# -- a tiny end-to-end run ---------------------------------------------------------------------------------------
def test_smoke_model_set_trains_and_compares_snapshots(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path))
    S = profiles.resolve("bonheme2022.models", "smoke", n_train=64, steps=10, n_snapshots=5)
    member = B.Member("beta_tc_vae", 2.0, 0)
    run = B.train_members(S, [member])[member]
    assert sorted(run.snapshots) == [2, 4, 6, 8, 10]
    assert "tc" in run.metrics  # a real β-TC-VAE, not the public config's β-VAE
    again = B.train_members(S, [member])[member]
    assert all(torch.equal(v, again.model.state_dict()[k]) for k, v in run.model.state_dict().items())
    x = B.load_images("dsprites", 24, seed=1, image_size=S.image_size, split="test").float()
    sims = B.snapshot_similarity(run, x, n_procrustes=12)
    assert sorted(sims) == [2, 4, 6, 8]
    table = sims[2]["min"]
    assert list(table.index) == run.model.layer_names() and table.shape == (15, 15)
    assert B.snapshot_summary(sims).shape == (4, 4)


class _InlineExecutor:
    """An executor that runs each submitted job at once, in this process (run_grid accepts any executor)."""

    def __init__(self):
        self.submitted = 0

    def submit(self, fn, *args):
        from concurrent.futures import Future

        self.submitted += 1
        fut = Future()
        fut.set_result(fn(*args))
        return fut


def test_model_set_trains_through_the_grid_runner_and_shares_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path))
    S = profiles.resolve("bonheme2022.models", "smoke", n_train=64, steps=4)
    members = [B.Member("beta_vae", 1.0, 0), B.Member("dip_vae_ii", 1.0, 0)]
    executor = _InlineExecutor()
    runs = B.train_members(S, members, executor=executor)
    assert executor.submitted == 2  # each member trained once, by the grid runner
    again = _InlineExecutor()
    cached = B.train_members(S, members, executor=again)
    assert again.submitted == 0  # nothing left to train: the grid and the pages share one cache entry
    serial = B.train_members(S, members)  # the serial path (S.parallel false) finds the grid's models
    for m in members:
        assert all(torch.equal(v, cached[m].model.state_dict()[k]) for k, v in runs[m].model.state_dict().items())
        assert all(torch.equal(v, serial[m].model.state_dict()[k]) for k, v in runs[m].model.state_dict().items())


def test_heatmap_grid_labels_layers_and_shares_one_scale():
    import matplotlib
    matplotlib.use("agg")
    from replab.plotting import bonheme as P

    names = ["input", "encoder.1", "mean", "output"]
    tables = {t: pd.DataFrame(np.full((4, 4), v), index=names, columns=names) for t, v in (("a", 0.2), ("b", 0.9))}
    fig = P.heatmap_grid(tables, ncols=2)
    heat = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in heat] == ["a", "b"]
    assert all(ax.images[0].get_clim() == (0.0, 1.0) for ax in heat)
    assert [t.get_text() for t in heat[0].get_xticklabels()] == names
    assert [t.get_text() for t in heat[0].get_yticklabels()] == names
    assert len(fig.axes) == 3  # two heatmaps and one shared colour bar
    with pytest.raises(ValueError, match="nothing to plot"):
        P.heatmap_grid({})


def test_pages_that_classify_factors_replace_unlabelled_real_files_by_the_stand_in(tmp_path):
    # the public code's Symsol layout: images only, no factor classes to classify
    (tmp_path / "symsol_reduced").mkdir()
    np.save(tmp_path / "symsol_reduced" / "symsol.npy",
            np.random.default_rng(0).integers(0, 256, (12, 64, 64), dtype=np.uint8))
    assert B.paper_datasets(["dsprites", "symsol"], root=tmp_path) == ["dsprites", "symsol"]
    with pytest.warns(UserWarning, match="symsol.*no factor classes.*using symsol_like instead"):
        assert B.paper_datasets(["dsprites", "symsol"], root=tmp_path, need_factors=True) == ["dsprites",
                                                                                                "symsol_like"]
