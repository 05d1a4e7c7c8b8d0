"""Tests of the Bonheme & Grześ 2022 experiments (replab.experiments.bonheme2022), the layer × layer similarity
tables (replab.layer_similarity) and the datasets of replab.transfer."""
import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from replab import data, models, profiles
from replab import layer_similarity as L
from replab.cache import ArtifactCache
from replab.geometry import active_units
from replab.experiments import bonheme2022 as B
from replab.transfer import load_images, paper_datasets

SMALL = models.Conv64Config(image_size=16, widths=(4, 4, 8, 8), hidden=16, latent_dim=3)


def _model(seed=0):
    torch.manual_seed(seed)
    return models.build(SMALL)


def _images(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((n, 1, 16, 16), generator=g) < 0.3).float()


def test_collapse_scores_count_dimensions_with_varying_means():
    model = _model().eval()
    x = _images(32)
    with torch.no_grad():
        model.mean.weight.zero_()
        # constant posterior means: no active unit
        assert active_units(models.encode(model, x)[0], unbiased=True) == 0
        model.mean.weight[1] = 1000.0
    scores = L.collapse_scores(model, x)
    assert scores["active_units"] == 1
    assert set(scores) == {"active_units", "cka_sampled_mean", "cka_sampled_input"}


def test_similarity_min_and_diagonal():
    g = torch.Generator().manual_seed(0)
    a = {"input": torch.randn(40, 12, generator=g), "encoder.1": torch.randn(40, 6, generator=g),
         "mean": torch.randn(40, 3, generator=g)}
    b = {k: v + 0.5 * torch.randn(v.shape, generator=g) for k, v in a.items()}
    t = L.similarity(a, b)
    assert set(t) == {"linear_cka", "procrustes", "min"}
    assert np.allclose(t["min"].to_numpy(), np.minimum(t["linear_cka"].to_numpy(), t["procrustes"].to_numpy()))
    assert list(t["min"].index) == list(a)
    self_table = L.similarity(a, a)["min"]
    assert np.allclose(L.diagonal(self_table).to_numpy(), 1.0, atol=1e-5)
    grid = L.similarity_tables({"a": a, "b": b}, [("a", "b"), ("b", "a")])
    averaged = L.mean_tables([grid[("a", "b")], grid[("b", "a")]])
    assert np.allclose(averaged["linear_cka"].to_numpy(), (t["linear_cka"].to_numpy() +
                                                           t["linear_cka"].to_numpy().T) / 2)
    with pytest.raises(ValueError, match="at least one"):
        L.mean_tables([])


def test_model_similarity_restricts_layers_and_a_model_matches_itself():
    a, b = _model(0).eval(), _model(1).eval()
    x = _images(24)
    layers = ["decoder.1", "output"]
    t = L.model_similarity(a, b, x, layers)
    assert list(t["min"].index) == layers and list(t["min"].columns) == layers
    full = L.similarity(L.representations(a, x), L.representations(b, x))
    assert np.allclose(t["linear_cka"].to_numpy(), full["linear_cka"].loc[layers, layers].to_numpy())
    assert np.allclose(L.diagonal(L.model_similarity(a, a, x, layers)["min"]).to_numpy(), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="not layers of both models"):
        L.model_similarity(a, b, x, ["decoder.9"])


def test_part_means_and_first_step_above():
    names = ["input", "encoder.1", "encoder.2", "mean", "variance", "sampled", "decoder.1", "output"]
    table = pd.DataFrame(np.diag([1, 0.9, 0.7, 0.2, 0.4, 0.5, 0.3, 0.1]), index=names, columns=names)
    assert L.part_means(table) == pytest.approx({"encoder": 0.8, "latent": 0.3, "sampled": 0.5, "decoder": 0.2})
    summary = pd.DataFrame({"encoder": [0.96, 0.99], "decoder": [0.5, 0.9]}, index=[10, 20])
    assert L.first_step_above(summary, 0.95, 30) == {"encoder": 10, "decoder": 30}


def test_objective_params_and_model_set():
    S = profiles.resolve(B.Models, "quick")
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
    full = profiles.resolve(B.Models, "full")
    assert full.steps == 300_000 and full.seeds == (0, 1, 2, 3, 4) and full.other_seeds == (0, 1, 2, 3, 4)
    assert (full.batch_size, full.lr, full.image_size, full.parallel) == (64, 1e-4, 64, True)
    assert full.strengths("beta_vae") == (1, 2, 4, 6, 8) and full.primary("beta_vae") == 1.0
    assert full.strengths("beta_tc_vae") == (1, 2, 4, 6, 8)
    assert full.strengths("annealed_vae") == (5, 10, 25, 50, 75)
    assert full.strengths("dip_vae_ii") == (1, 2, 5, 10, 20)
    assert B.objective_params(full, "annealed_vae", 5)["iteration_threshold"] == 100_000
    assert B.objective_params(full, "annealed_vae", 5)["gamma"] == 1000.0
    assert len(B.model_set(full)) == 4 * 5 * 5  # objectives × strengths × seeds
    # the primary strength with every seed first, then each other strength with the other seeds
    assert [(m.strength, m.seed) for m in B.model_set(S) if m.objective == "dip_vae_ii"] == \
        [(1, 0), (1, 1), (1, 2), (10, 0), (10, 1), (10, 2)]


def test_paper_datasets_use_real_files_when_present_else_the_stand_in(tmp_path):
    with pytest.warns(UserWarning, match="symsol.*using symsol_solids instead"):
        assert paper_datasets(["dsprites", "symsol"], root=tmp_path) == ["dsprites", "symsol_solids"]
    with pytest.warns(UserWarning, match="cars3d.*left out"):
        assert paper_datasets(["dsprites", "cars3d"], root=tmp_path) == ["dsprites"]
    images = np.random.default_rng(0).integers(0, 256, (50, 64, 64), dtype=np.uint8)
    np.savez(tmp_path / "symsol_reduced.npz", images=images, labels=np.repeat(np.arange(5), 10))
    assert paper_datasets(["dsprites", "symsol"], root=tmp_path) == ["dsprites", "symsol"]
    with pytest.raises(ValueError, match="unknown dataset 'mnist-1k'"):
        paper_datasets(["mnist-1k"])
    full = profiles.resolve(B.Models, "full")
    assert profiles.resolve(B.EncoderBeforeDecoder, "full").datasets == ("dsprites", "cars3d", "smallnorb")
    assert full.transfer_datasets == ("dsprites", "symsol")
    # Cars3D is in colour: its VAEs take three channels, the grey datasets one
    assert B.train_config(full, B.Member("beta_vae", 1.0, 0, "cars3d")).model.channels == 3
    assert B.train_config(full, B.Member("beta_vae", 1.0, 0, "smallnorb")).model.channels == 1


def test_load_images_takes_the_whole_split_when_it_is_smaller(tmp_path, monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, (50, 64, 64), dtype=np.uint8)
    np.savez(tmp_path / "symsol_reduced.npz", images=images, labels=np.repeat(np.arange(5), 10))
    monkeypatch.setenv("REPLAB_DATA", str(tmp_path))
    got = load_images("symsol", 1000, image_size=32, split="test", cache=ArtifactCache(tmp_path / "cache"))
    assert got.images.shape == (5, 1, 32, 32)  # the stratified 10% test split: one image per shape
    assert got.factor_names == ("label",) and sorted(got.factor_classes[:, 0].tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="n must be a non-negative integer"):
        load_images("dsprites", -1)
    # n = 0: the whole split, as `full` trains on it
    whole = load_images("symsol", 0, image_size=32, split="train", cache=ArtifactCache(tmp_path / "cache"))
    assert whole.images.shape == (45, 1, 32, 32)


def test_smoke_model_set_trains_and_compares_snapshots(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path))
    S = profiles.resolve(B.Models, "smoke", n_train=64, steps=10, n_snapshots=5)
    member = B.Member("beta_tc_vae", 2.0, 0)
    run = B.train_members(S, [member])[member]
    assert sorted(run.snapshots) == [2, 4, 6, 8, 10]
    assert "tc" in run.metrics  # a real β-TC-VAE, not the public config's β-VAE
    again = B.train_members(S, [member])[member]
    assert all(torch.equal(v, again.model.state_dict()[k]) for k, v in run.model.state_dict().items())
    x = B.held_out_images(S, "dsprites", 24)
    sims = L.snapshot_similarity(run, x, n_procrustes=12)
    assert sorted(sims) == [2, 4, 6, 8]
    table = sims[2]["min"]
    assert list(table.index) == run.model.layer_names() and table.shape == (15, 15)
    assert L.snapshot_summary(sims).shape == (4, 4)
    # the diagonal-only path gives the full tables' diagonal means
    pd.testing.assert_frame_equal(L.snapshot_parts(run, x, n_procrustes=12), L.snapshot_summary(sims), atol=1e-6,
                                  check_names=False)


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
    S = profiles.resolve(B.Models, "smoke", n_train=64, steps=4)
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
    assert paper_datasets(["dsprites", "symsol"], root=tmp_path) == ["dsprites", "symsol"]
    with pytest.warns(UserWarning, match="symsol.*no factor classes or labels.*using symsol_solids instead"):
        assert paper_datasets(["dsprites", "symsol"], root=tmp_path, need_factors=True) == ["dsprites",
                                                                                                "symsol_solids"]


def test_pages_at_medium_read_the_papers_datasets_or_stop(tmp_path, monkeypatch):
    from replab.data import stand_ins
    from replab.data.stand_ins import MissingDataset, StandInRefused

    monkeypatch.setenv("REPLAB_DATA", str(tmp_path))   # no dataset file here
    fetch = r"replab data (fetch|ls)"
    try:
        for page in B.PAGES + B.PAGES_2023:
            with pytest.raises((MissingDataset, StandInRefused), match=fetch):
                profiles.resolve_page(page, "medium", {})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            M, S = profiles.resolve_page(B.PAGES[0], "medium", {"stand_ins": True})
            assert M.transfer_datasets == ("dsprites", "symsol_solids")
            assert S.datasets == ("dsprites",)   # Cars3D and smallNORB have no stand-in: left out, and said so
            assert {"dsprites (generated)", "symsol_solids", "no cars3d"} <= set(stand_ins.used())
            _, V = profiles.resolve_page("bonheme2023/04-shared-variables", "medium", {"stand_ins": True})
            assert V.exception_datasets == ()  # CelebA has no stand-in: the exception is not run
            # the pages' own choice of datasets follows the same policy
            assert paper_datasets(["dsprites", "symsol"]) == ["dsprites", "symsol_solids"]
        stand_ins.configure(False)
        with pytest.raises(MissingDataset, match=fetch):
            paper_datasets(["symsol"])
        with pytest.raises(StandInRefused, match=fetch):
            paper_datasets(["symsol_solids"])
    finally:
        stand_ins.configure(None)


def test_medium_models_build_and_train_one_step_on_cpu(tmp_path, monkeypatch):
    from replab.experiments import bonheme2022_appendix as A
    from replab.train import train
    from replab.transfer import ImageSet, transfer

    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path))
    M = dataclasses.replace(profiles.resolve(B.Models, "medium"), n_train=8, batch_size=4, steps=1)
    assert (M.image_size, M.widths, M.hidden) == (64, (32, 32, 64, 64), 256)
    grey = torch.randint(0, 256, (8, 1, 64, 64), dtype=torch.uint8)
    colour = torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8)
    runs = {}
    for obj in B.OBJECTIVES:
        runs[obj] = train(B.train_config(M, B.Member(obj, M.primary(obj), 0)), cache=False, data=(grey, None))
        assert runs[obj].model.reconstruct(grey[:2].float() / 255).shape == (2, 1, 64, 64)
    cars = train(B.train_config(M, B.Member("beta_vae", 1.0, 0, "cars3d")), cache=False, data=(colour, None))
    assert cars.model.reconstruct(colour[:2].float() / 255).shape == (2, 3, 64, 64)
    S = profiles.resolve(B.Objectives, "medium")
    classifier = A.train_classifier(M, steps=1)
    assert "accuracy" in classifier.metrics
    fc = A.train_fc(M, B.Member("beta_vae", 1.0, 0), steps=1, width=S.fc_width)
    assert fc.model.reconstruct(grey[:2].float() / 255).shape == (2, 1, 64, 64)
    moved = transfer(runs["beta_vae"], ImageSet(grey, None, (), {"toy": 1}), ["decoder.1", "output"], steps=1,
                     cache=False)
    assert moved.reconstruct(grey[:2].float() / 255).shape == (2, 1, 64, 64)
    # n_train = 0 counts the whole training split in β-TC-VAE's N
    whole = dataclasses.replace(M, n_train=0)
    assert B.objective_params(whole, "beta_tc_vae", 1.0)["dataset_size"] == len(data.load("dsprites", "train"))
