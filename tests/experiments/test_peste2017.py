"""The section functions of the Peşte et al. (2017) pages, against closed forms and independent recomputations."""
import dataclasses
import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from replab import data, geometry, profiles
from replab.data import stand_ins
from replab.data.stand_ins import MissingDataset, StandInRefused
from replab.experiments import peste2017 as px
from replab.experiments import peste2017_probes as pp
from replab.models import MLPConfig, MLPVAE

PAGES = ("peste2017/01-active-components", "peste2017/02-likelihood-vs-alpha", "peste2017/03-linear-separability",
         "peste2017/04-geodesics")


def _models(**changes) -> px.Models:
    base = px.Models(dataset="mnist10k", n_train=200, alphas=(1.0,), latent_dims=(4,), n_runs=1, n_epochs=2,
                     snapshot_epochs=(1, 2, 5), n_samples=2, batch_size=100, lr=1e-3)
    return dataclasses.replace(base, **changes)


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """No data folder (so the full MNIST is missing whatever the machine holds); the stand-in policy is reset
    afterwards."""
    monkeypatch.setenv("REPLAB_DATA", str(tmp_path / "data"))
    yield
    stand_ins.configure(None)


@pytest.mark.parametrize("profile", profiles.names())
def test_every_page_resolves_the_shared_models_and_its_own_sizes(profile, no_data):
    # stand_ins=True: at medium and full the missing full MNIST is replaced by its stand-in
    models = dataclasses.replace(profiles.resolve(px.Models, profile), dataset="mnist10k")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for page in PAGES:
            resolved = profiles.resolve_page(page, profile, {"stand_ins": True})
            assert resolved[0] == models and len(resolved) == 2
        # a page parameter overrides the profile's value of its own section only
        m, s = profiles.resolve_page(PAGES[0], profile, {"n_test": 7, "alphas": [0, 1], "stand_ins": True})
        assert s.n_test == 7 and m.alphas == (0.0, 1.0) and isinstance(m.alphas[1], float)
        sizes = profiles.resolve_page(PAGES[1], profile, {"stand_ins": True})[1]
    assert sizes.n_test == profiles.resolve(px.Likelihood, profile).n_test


@pytest.mark.parametrize("page", PAGES)
def test_medium_reads_the_full_mnist_or_says_how_to_fetch_it(page, no_data):
    with pytest.raises(MissingDataset, match="replab data fetch mnist"):
        profiles.resolve_page(page, "medium", {})
    with pytest.warns(UserWarning, match="stand-in mnist10k"):
        models = profiles.resolve_page(page, "medium", {"stand_ins": True})[0]
    assert models.dataset == "mnist10k" and stand_ins.used() == {"mnist10k": "mnist"}
    # the stand-in itself, asked for by name, is refused at medium unless stand_ins=True
    with pytest.raises(StandInRefused, match="replab data fetch mnist"):
        profiles.resolve_page(page, "medium", {"dataset": "mnist10k"})
    # the paper's dataset, architecture, latent sizes and runs; fewer epochs than the paper's 1,000
    full, medium = profiles.resolve(px.Models, "full"), profiles.resolve(px.Models, "medium")
    assert medium.dataset == full.dataset == "mnist" and medium.n_train == 60000
    assert medium.latent_dims == (30, 40, 50) and medium.n_runs == 3 and full.n_epochs == 1000
    assert medium.snapshot_epochs[-1] == medium.n_epochs < full.n_epochs


def test_medium_models_build_and_take_one_stacked_step_on_a_tiny_batch():
    """Each latent size of the medium grid, its α values stacked as at medium (one run each here), with the
    medium objective (the Rényi bound with its samples), one update on 8 images on the CPU: shapes, not numbers."""
    from replab.train import train_group

    m = dataclasses.replace(profiles.resolve(px.Models, "medium"), dataset="mnist10k", n_train=16, batch_size=8,
                            n_epochs=1, snapshot_epochs=(1,))
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    for k in m.latent_dims:
        configs = [dataclasses.replace(px.train_config(m, a, k), steps=1, snapshot_steps=(1,), device="cpu")
                   for a in m.alphas]
        assert configs[0].model == MLPConfig(latent_dim=k, hidden=(200, 200), activation="relu",
                                             likelihood="bernoulli")
        assert configs[0].objective_params["n_samples"] == m.n_samples == 10
        runs = train_group(configs, cache=False, data=[x] * len(configs))
        assert len(runs) == len(m.alphas)
        for run in runs:
            assert np.isfinite(run.metrics["loss"]).all() and sorted(run.snapshots) == [1]
            mu, sigma = px.encode(run.model, x[:3], device="cpu")
            assert mu.shape == sigma.shape == (3, k) and (sigma > 0).all()
            with torch.no_grad():
                assert run.model.decode(mu.float()).shape[0] == 3


def test_train_config_counts_epochs_in_updates():
    n_available = len(data.load("mnist10k", split="train"))
    m = _models(n_train=300, batch_size=100, n_epochs=4, snapshot_epochs=(1, 2, 10))
    cfg = px.train_config(m, 0.5, 6, run=2, seed=10)
    assert cfg.n == 300 and cfg.steps == 4 * 3 and cfg.snapshot_steps == (3, 6)   # epoch 10 is past the end
    assert cfg.seed == 12 and cfg.model.latent_dim == 6
    assert cfg.objective == "renyi" and cfg.objective_params == {"alpha": 0.5, "n_samples": 2}
    whole = px.train_config(_models(n_train=10 ** 6, batch_size=100), 1.0, 4)
    assert whole.n is None and whole.steps == 2 * (n_available // 100)


def test_encode_gives_means_and_standard_deviations_whatever_the_batch():
    torch.manual_seed(0)
    model = MLPVAE(MLPConfig(latent_dim=3, hidden=(16, 16)))
    x = torch.rand(23, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    mu, sigma = px.encode(model, x, batch_size=5, device="cpu")
    with torch.no_grad():
        want_mu, logvar = model.encode(x)
    assert mu.dtype == sigma.dtype == torch.float64 and mu.shape == (23, 3)
    torch.testing.assert_close(mu, want_mu.double(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sigma ** 2, logvar.double().exp(), rtol=1e-5, atol=1e-6)


def _prior_posterior_model(latent_dim: int, bias: float) -> MLPVAE:
    """A VAE whose q(z | x) is the prior N(0, I) for every x and whose decoder ignores z: Bernoulli(σ(bias))."""
    model = MLPVAE(MLPConfig(latent_dim=latent_dim, hidden=(8, 8)))
    with torch.no_grad():
        for layer in (model.mean, model.variance):
            layer.weight.zero_()
            layer.bias.zero_()
        out = model.output[0] if isinstance(model.output, torch.nn.Sequential) else model.output
        out.weight.zero_()
        out.bias.fill_(bias)
    return model


def test_likelihoods_are_exact_when_the_posterior_is_the_prior_and_the_decoder_ignores_z(monkeypatch):
    model = _prior_posterior_model(4, bias=-1.5)
    runs = {(alpha, 4, 0): SimpleNamespace(model=model) for alpha in (0.0, 0.5, 1.0)}
    monkeypatch.setattr(px, "train_models", lambda models, **kw: runs)
    sizes = px.Likelihood(n_test=30, n_is_samples=20, n_bound_samples=5, n_repeats=2)
    out = px.likelihoods(_models(alphas=(0.0, 0.5, 1.0)), sizes, seed=3)
    # every importance weight is p(x): the bound at any α and the estimate are the Bernoulli log-likelihood
    x = data.load("mnist10k", split="test").images[:30].double().flatten(1).numpy() / 255.0
    p = 1 / (1 + math.exp(1.5))
    exact = float(np.mean((x * np.log(p) + (1 - x) * np.log(1 - p)).sum(1)))
    assert len(out.estimates) == 3 * 2 and set(out.estimates["repeat"]) == {0, 1}
    np.testing.assert_allclose(out.estimates["log_likelihood"], exact, rtol=1e-4)
    np.testing.assert_allclose(out.estimates["renyi_bound"], exact, rtol=1e-4)
    np.testing.assert_allclose(out.table["gap"], 0.0, atol=1e-2)
    assert list(out.table.index) == [(4, 0.0), (4, 0.5), (4, 1.0)]
    np.testing.assert_allclose(out.table["ll_std_over_repeats"], 0.0, atol=1e-2)
    # per digit: axes (k, α, run, repeat, digit), each digit's own Bernoulli log-likelihood
    per_digit = (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(1)
    assert out.alphas == (0.0, 0.5, 1.0) and out.latent_dims == (4,)
    assert out.log_likelihood.shape == out.renyi_bound.shape == (1, 3, 1, 2, 30)
    np.testing.assert_allclose(out.log_likelihood, np.broadcast_to(per_digit, (1, 3, 1, 2, 30)), rtol=1e-4)
    np.testing.assert_allclose(out.renyi_bound.mean(-1), out.estimates["renyi_bound"].to_numpy().reshape(1, 3, 1, 2))


def _varying_means_model(latent_dim: int, n_active: int) -> MLPVAE:
    torch.manual_seed(0)
    model = MLPVAE(MLPConfig(latent_dim=latent_dim, hidden=(32, 32)))
    with torch.no_grad():
        model.mean.weight[:n_active] *= 20
        model.mean.weight[n_active:] = 0                   # unused: μ(x) is the bias, whatever x
        model.variance.weight[n_active:] = 0
        model.variance.bias[n_active:] = math.log(0.64)   # σ² = 0.64 on the unused dimensions
    return model


def test_spectra_and_counts_against_numpy(monkeypatch):
    models = {3: _varying_means_model(8, 3), 5: _varying_means_model(8, 5)}
    runs = {(0.0, 8, 0): SimpleNamespace(model=models[3]), (1.0, 8, 0): SimpleNamespace(model=models[5])}
    monkeypatch.setattr(px, "train_models", lambda m, **kw: runs)
    out = px.spectra_and_counts(_models(alphas=(0.0, 1.0), latent_dims=(8,)), px.ActiveComponents(200, 0.01))
    x = data.load("mnist10k", split="test").images[:200].float() / 255.0
    for alpha, n_active in ((0.0, 3), (1.0, 5)):
        row = out.counts.set_index("alpha").loc[alpha]
        assert row["active"] == row["active_axes"] == n_active
        assert row["sigma2_inactive"] == pytest.approx(0.64, rel=1e-5)
        # the unused axes are constant: the active principal subspace is spanned by the used axes
        assert row["alignment"] == pytest.approx(1.0)
        assert row["alignment_rotated"] < 0.99
        with torch.no_grad():
            mu = models[n_active].encode(x)[0].double().numpy()
        want = np.sort(np.linalg.eigvalsh(np.cov(mu, rowvar=False, bias=True)))[::-1]
        np.testing.assert_allclose(out.mean_spectra[8][alpha], want, rtol=1e-6, atol=1e-9)


@pytest.fixture
def tiny_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.filterwarnings("ignore:.*converge")   # a short lbfgs cap, on purpose
def test_probes_at_every_snapshot_and_the_public_codes_probe_beside_them(tiny_cache):
    m = _models(alphas=(0.0, 1.0), latent_dims=(3, 4), n_runs=2)
    # the training split is sorted by label: the probes see all of it
    sizes = px.LinearSeparability(n_probe_train=8000, n_test=500, max_iter=100, legacy_steps=20)
    out = pp.probe_accuracies(m, sizes, alpha=1.0, seed=0)
    probes = out.probes
    assert set(probes["k"]) == {3, 4} and set(probes["epoch"]) == {1.0, 2.0}     # epoch 5 is past the end
    assert set(probes["kind"]) == {"means", "means+variances", "samples"} and len(probes) == 2 * 2 * 2 * 3
    assert probes["accuracy"].between(0, 1).all() and 0 <= out.pixels["accuracy"] <= 1
    # each digit's outcome at the last snapshot: every kind at the probed α, the means at the other α
    assert set(out.correct) == {(1.0, k, kind) for k in (3, 4) for kind in ("means", "means+variances", "samples")} \
        | {(0.0, 3, "means"), (0.0, 4, "means")}
    assert all(v.shape == (2, 500) and v.dtype == bool for v in out.correct.values())
    last = probes[probes["epoch"] == 2.0].set_index(["k", "kind", "run"])["accuracy"]
    for (alpha, k, kind), outcome in out.correct.items():
        if alpha == 1.0:
            np.testing.assert_allclose(outcome.mean(1), [last[(k, kind, 0)], last[(k, kind, 1)]])
    assert float(np.asarray(out.pixels["correct"]).mean()) == pytest.approx(out.pixels["accuracy"])
    compare = pp.legacy_probes(m, sizes, probes, alpha=1.0, learning_rate=0.1, seed=0)
    assert list(dict.fromkeys(compare.columns.get_level_values(0))) == ["converged", "20 SGD steps"]
    converged = probes.pivot_table(index=["k", "epoch"], columns="kind", values="accuracy")
    assert compare["converged"].equals(converged)
    assert compare["20 SGD steps"].shape == converged.shape


def test_geodesic_pairs_measure_each_pair_and_keep_the_first(tiny_cache):
    m, sizes = _models(), px.Geodesics(n_pairs=3, n_steps=5, geo_k=4)
    out = px.geodesic_pairs(m, sizes, alpha=1.0, seed=2)
    model = px.train_models(m, alphas=[1.0], latent_dims=[4], seed=2)[(1.0, 4, 0)].model
    test = data.load("mnist10k", split="test")
    x, y = test.images.float() / 255.0, test.labels
    paths = out.paths
    assert list(paths["pair"]) == [0, 1, 2]
    assert all(a != b for a, b in (d.split("→") for d in paths["digits"]))
    assert (paths["line_over_geodesic"] >= 1 - 1e-9).all()          # the geodesic is the shortest path
    np.testing.assert_allclose(paths["fisher_rao_distance"], [
        float(geometry.fisher_rao_distance(*px.encode(model, x[[i]]), *px.encode(model, x[[j]])))
        for i, j in px._pairs(y, 3, seed=2)], rtol=1e-6)
    i, j = px._pairs(y, 3, seed=2)[0]
    again = geometry.interpolation_rows(model, x[i], x[j], n_steps=5, seed=2)
    assert list(out.first) == list(again) and all(torch.equal(out.first[r], again[r]) for r in again)
    (mu_i, s_i), (mu_j, s_j) = px.encode(model, x[[i]]), px.encode(model, x[[j]])
    for got, want in zip(out.first_ends, (mu_i[0], s_i[0], mu_j[0], s_j[0])):
        torch.testing.assert_close(got, want)
    assert paths.loc[0, "sharpness_geodesic"] == pytest.approx(geometry.transition_sharpness(again["geodesic, means"]))
    assert (paths["dims_rising"] <= paths["dims_separated"]).all() and set(paths["run"]) == {0}


def test_geodesic_pairs_join_the_same_pairs_on_every_run(tiny_cache):
    m, sizes = _models(n_runs=2), px.Geodesics(n_pairs=3, n_steps=5, geo_k=4)
    paths = px.geodesic_pairs(m, sizes, alpha=1.0, seed=2).paths
    assert list(paths["run"]) == [0, 0, 0, 1, 1, 1] and list(paths["pair"]) == [0, 1, 2] * 2
    assert list(paths["digits"][:3]) == list(paths["digits"][3:])
    assert not np.allclose(paths["fisher_rao_distance"][:3], paths["fisher_rao_distance"][3:])   # two models


def test_half_plane_figure_shows_the_dimensions_whose_means_are_farthest_apart():
    import matplotlib

    matplotlib.use("Agg")
    from replab.plotting import peste as peste_plots

    mu1, mu2 = torch.zeros(4, dtype=torch.float64), torch.tensor([1.0, 5.0, -3.0, 0.1], dtype=torch.float64)
    s = torch.full((4,), 0.5, dtype=torch.float64)
    axes = peste_plots.geodesic_half_planes(mu1, s, mu2, s, n_dims=3)
    assert [ax.get_title() for ax in axes] == ["dimension 1", "dimension 2", "dimension 0"]
    geodesic = axes[0].lines[0].get_xydata()
    assert geodesic[0] == pytest.approx([0.0, 0.5]) and geodesic[-1] == pytest.approx([5.0, 0.5])
    assert geodesic[:, 1].max() > 0.5                                  # σ rises along the geodesic (Fig. 4)


def test_likelihood_sweep_draws_one_line_per_quantity_and_latent_size():
    import pandas as pd

    from replab.plotting import peste as peste_plots

    df = pd.DataFrame({"alpha": [0.0, 0.0, 1.0, 1.0] * 2, "k": [3] * 4 + [5] * 4,
                       "log_likelihood": np.arange(8.0), "renyi_bound": np.arange(8.0) - 10})
    fig = peste_plots.likelihood_sweep(df).figure
    names = sorted(t.name for t in fig.data if t.name)
    assert names == ["Rényi bound, k = 3", "Rényi bound, k = 5", "log p(x), k = 3", "log p(x), k = 5"]
    line = next(t for t in fig.data if t.name == "log p(x), k = 5")
    assert list(line.y) == [4.5, 6.5]                                    # the mean over rows at each α
