"""Page helpers of Jamroż et al. (2020): configurations, code samplers, layer complexity, sample quality."""
import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from replab.cache import ArtifactCache
from replab.dpgmm import DPGMM
from replab.experiments import jamroz2020 as jamroz
from replab.experiments import jamroz2020_vae as jv
from replab.models import sample_codes
from replab.fingerprints import PAPER_LAYER_DIMS
from replab.grid import train_runs
from replab.models import MLPConfig, MLPVAE, VGGClassifier, VGGConfig, vgg_layout


def _training(dataset="mnist10k", depth=8, n_train=500, epochs=4, batch_size=50, lr=0.01):
    return jamroz.CNNTraining(dataset, depth, n_train, epochs, batch_size, lr)


VAE = dict(dataset="mnist10k", arch="mlp", widths=(8, 8, 8, 8), latent_dim=6, betas=(0.1, 10.0), n_train=200,
           epochs=2, batch_size=50, lr=1e-3, n_codes=30, n_sweeps=6, burn_in=2, thin=2, n_samples=200, n_seeds=1)


def test_cnn_config_follows_public_code_and_rejects_unknown_names():
    cfg = jamroz.cnn_config(_training(), 32, labels="random", regulariser="both", seed=3)
    assert cfg.random_labels and cfg.augment and cfg.model.dropout == 0.2
    assert cfg.steps == 4 * (500 // 50) and cfg.n == 500 and cfg.seed == 3 and cfg.label_seed == 0
    assert cfg.optimizer == "sgd" and cfg.nesterov and cfg.momentum == 0.9 and cfg.weight_decay == 1e-6
    assert cfg.model.layout == vgg_layout(8, 32) and cfg.model.channels == 1 and cfg.model.image_size == 28
    assert jamroz.cnn_config(_training(n_train=0, epochs=1, batch_size=100), 64).n is None  # the whole split
    # digits are cropped but never flipped (a flip changes the class); nets without augmentation keep the default
    assert not cfg.flip and jamroz.cnn_config(_training(), 32, regulariser="none").flip
    with pytest.raises(ValueError, match="regulariser: expected one of"):
        jamroz.cnn_config(_training(n_train=100), 64, regulariser="mixup")
    with pytest.raises(ValueError, match="labels: expected one of"):
        jamroz.cnn_config(_training(n_train=100), 64, labels="noisy")
    with pytest.raises(ValueError, match="dataset: expected one of"):
        jamroz.cnn_config(_training(dataset="imagenet"), 64)


def test_vae_config_losses_as_public_code():
    v = jv.VAESweep(**VAE)
    b, m = jv.vae_config(v, "beta_vae", 4.0), jv.vae_config(v, "mmd_vae", 100.0)
    assert b.model.output_variance == 0.3 and m.model.output_variance == 0.5
    assert m.objective_params == {"beta": 100.0, "prior_variance": 2.0, "unbiased": False}
    assert jv.prior_variance(m) == 2.0 and jv.prior_variance(b) == 1.0 and b.steps == 8 and b.lr == 1e-3
    assert b.model.latent_dim == 6 and b.n == 200 and b.optimizer == "adam"
    with pytest.raises(ValueError, match="objective: expected"):
        jv.vae_config(v, "beta_tc_vae", 1.0)
    with pytest.raises(ValueError, match="beta: expected a positive number"):
        jv.vae_config(v, "beta_vae", 0.0)
    with pytest.raises(ValueError, match="arch: expected"):
        jv.vae_config(jv.VAESweep(**{**VAE, "arch": "resnet"}), "beta_vae", 1.0)


def test_layer_dims():
    names = [f"conv.{i}" for i in range(1, 12)]
    assert list(jamroz.layer_dims(0, 11, names).values()) == list(PAPER_LAYER_DIMS[11])  # 0: the paper's
    assert set(jamroz.layer_dims(7, 11, names).values()) == {7}
    with pytest.raises(ValueError, match="d: expected a positive integer"):
        jamroz.layer_dims(-1, 11, names)
    with pytest.raises(ValueError, match="needs depth in"):
        jamroz.layer_dims(0, 5, names[:5])


@pytest.fixture(scope="module")
def correlated_dpgmm():
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    x = rng.multivariate_normal([2.0, -1.0], cov, size=300)
    return DPGMM(n_sweeps=30, burn_in=20, thin=5, seed=0).fit(x)


def test_draw_codes_joint_keeps_and_factorial_drops_dependence(correlated_dpgmm):
    joint = jv.draw_codes("joint", 4000, seed=1, model=correlated_dpgmm).double()
    fact = jv.draw_codes("factorial", 4000, seed=1, model=correlated_dpgmm).double()
    trace = jv.draw_codes("trace", 4000, seed=1, model=correlated_dpgmm).double()
    assert np.corrcoef(joint.T.numpy())[0, 1] > 0.8 and np.corrcoef(trace.T.numpy())[0, 1] > 0.8
    assert abs(np.corrcoef(fact.T.numpy())[0, 1]) < 0.08
    # the product of marginals has the joint's marginals: same means, similar spreads (Student-t tails aside)
    torch.testing.assert_close(fact.median(0).values, joint.median(0).values, atol=0.1, rtol=0)
    iqr = lambda t: t.quantile(0.75, 0) - t.quantile(0.25, 0)  # noqa: E731
    torch.testing.assert_close(iqr(fact), iqr(joint), atol=0.1, rtol=0)
    torch.testing.assert_close(jv.draw_codes("joint", 50, seed=2, model=correlated_dpgmm),
                               jv.draw_codes("joint", 50, seed=2, model=correlated_dpgmm))
    # "trace" draws from p(z* | c_t) of the chosen kept sweep: its mean is that sweep's mixture mean
    for t in (0, correlated_dpgmm.n_traces_ - 1):
        want = correlated_dpgmm.predictive(trace_index=t, device="cpu").mean.float()
        got = jv.draw_codes("trace", 20000, seed=3, model=correlated_dpgmm, trace_index=t).mean(0)
        torch.testing.assert_close(got, want, atol=0.05, rtol=0)
    torch.testing.assert_close(jv.draw_codes("trace", 10, seed=4, model=correlated_dpgmm),
                               jv.draw_codes("trace", 10, seed=4, model=correlated_dpgmm, trace_index=-1))
    with pytest.raises(ValueError, match="trace_index"):
        jv.draw_codes("trace", 10, model=correlated_dpgmm, trace_index=correlated_dpgmm.n_traces_)


def test_draw_codes_prior_variance_and_errors():
    z = jv.draw_codes("prior", 20000, seed=0, latent_dim=3, variance=2.0)
    assert z.shape == (20000, 3)
    torch.testing.assert_close(z.var(0), torch.full((3,), 2.0), atol=0.08, rtol=0)
    with pytest.raises(ValueError, match="source: expected"):
        jv.draw_codes("posterior", 5, model=object())
    with pytest.raises(ValueError, match="a fitted DPGMM is needed"):
        jv.draw_codes("joint", 5)


def test_layer_complexity_separates_a_mixture_from_a_gaussian():
    rng = np.random.default_rng(0)
    gauss = torch.as_tensor(rng.normal(size=(240, 2)))
    centres = rng.choice([-4.0, 4.0], size=(240, 1))
    mixture = torch.as_tensor(np.hstack([centres + rng.normal(size=(240, 1)), rng.normal(size=(240, 1))]))
    sizes = jamroz.Chain(n_sweeps=40, burn_in=20, thin=5, n_samples=2000)
    df = jamroz.layer_complexity({"conv.1": gauss, "conv.2": mixture}, sizes, seed=0, condition="toy")
    assert list(df["layer"]) == [1, 2] and set(df["condition"]) == {"toy"} and list(df["d"]) == [2, 2]
    assert (df["min"] <= df["mean"]).all() and (df["mean"] <= df["max"]).all()
    # KL(mixture of N(±4, 1) ‖ N(0, 17)) is about 0.7 nats; a Gaussian sample is near 0
    assert df.loc[0, "mean"] < 0.15 < 0.4 < df.loc[1, "mean"]


def test_cnn_fingerprints_caps_d_by_points():
    torch.manual_seed(0)
    cfg = VGGConfig(layout=vgg_layout(8, 16), channels=1, image_size=12)
    runs = [SimpleNamespace(config=SimpleNamespace(model=cfg), model=VGGClassifier(cfg).eval()) for _ in range(2)]
    fp = jamroz.cnn_fingerprints(runs, torch.rand(20, 1, 12, 12), d=6)
    assert fp["conv.1"].shape == (4, 3)       # 2 nets × 2 kernels: d capped at N − 1
    assert fp["conv.8"].shape == (32, 6)


def _per_batch_codes(model, x, seed, batch_size=500):
    """The codes as the pages drew them before: z = μ + exp(½ log σ²)·ε, ε float32 per batch of 500."""
    g = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            mu, logvar = model.encode(x[start:start + batch_size].float() / 255.0)
            out.append((mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g)).double())
    return torch.cat(out)


class _Split:
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)


def test_fit_latents_draws_the_codes_of_the_per_batch_loop_bit_for_bit(monkeypatch):
    torch.manual_seed(0)
    model = MLPVAE(MLPConfig(latent_dim=3, likelihood="gaussian", output_variance=0.3)).eval()
    x = torch.randint(0, 256, (1200, 1, 28, 28), dtype=torch.uint8)  # three batches, the last one short
    g = torch.Generator().manual_seed(4)
    assert torch.equal(sample_codes(model, x, g), _per_batch_codes(model, x, 4))
    monkeypatch.setattr(jv._data, "load", lambda *args, **kwargs: _Split(x))  # n_codes = 0: every image
    run = SimpleNamespace(model=model, config=SimpleNamespace(dataset="toy"))
    v = jv.VAESweep(**{**VAE, "n_codes": 0, "n_sweeps": 4, "burn_in": 2, "thin": 1})
    dp, z = jv.fit_latents(run, v, seed=4)
    assert torch.equal(z, _per_batch_codes(model, x, 4)) and dp.n_traces_ == 2
    img = jv.decode(model, 10 * torch.randn(5, 3))
    assert img.shape == (5, 1, 28, 28) and img.min() >= 0 and img.max() <= 1


def test_tiny_grid_trains_memorises_and_scores(tmp_path):
    cache = ArtifactCache(tmp_path)
    cfgs = [jamroz.cnn_config(_training(n_train=50, epochs=1, batch_size=25), 8, labels=lab)
            for lab in ("true", "random")]
    runs = train_runs(cfgs, cache=cache)
    assert len(runs) == 2 and cache.exists("train", cfgs[0])
    hits = cache.hits
    again = train_runs(cfgs[:1], cache=cache)[0]  # loaded under the lock, not trained again
    assert cache.hits == hits + 1 and again.key == runs[0].key
    assert cache.path("train", cfgs[0]).with_suffix(".lock").is_file()  # trained under the key's lock
    # "train" accuracy is measured against the labels the net was trained on (permuted for the random run)
    for run in runs:
        assert 0.0 <= jamroz.accuracy(run, "train") <= 1.0
        right = jamroz.correctness(run, "test")
        assert right.shape == (2000,) and set(right.unique().tolist()) <= {0.0, 1.0}
        assert float(right.mean()) == pytest.approx(jamroz.accuracy(run, "test"))
    real = jamroz.real_images("mnist10k", 40, seed=0)
    q = jv.sample_quality(runs[0], real, real)
    assert q["fd"] == pytest.approx(0.0, abs=1e-6) and 0.1 <= q["confidence"] <= 1.0
    # one pass gives the last block's pooled output and the softmax of the head, as two separate forward passes
    feats, probs = jv.classifier_outputs(runs[0], real)
    with torch.no_grad():
        h = real
        for block in runs[0].model.blocks.values():
            h = block(h)
        torch.testing.assert_close(feats, h.mean((2, 3)).double(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(probs, torch.softmax(runs[0].model(real), 1).double(), rtol=1e-5, atol=1e-6)
    other = jamroz.real_images("mnist10k", 30, seed=1)
    by_images = jv.sample_quality(runs[0], other, real)
    assert jv.sample_quality(runs[0], other, feats) == pytest.approx(by_images)  # features as the reference
    assert by_images["fd"] > 0
    with pytest.raises(ValueError, match=r"images: expected a tensor of shape \(n, C, H, W\)"):
        jv.classifier_outputs(runs[0], real[0])


def test_random_labels_are_one_fixed_permutation_for_every_seed():
    from replab.train import classifier_targets, load_data

    def labels_of(cfg):
        images, labels = load_data(cfg, None, (1, 28, 28))  # the training subset and its true labels
        return classifier_targets(cfg, labels, len(images))

    training = _training(n_train=300, epochs=1, batch_size=50)
    true = labels_of(jamroz.cnn_config(training, 8))
    r0, r1 = (labels_of(jamroz.cnn_config(training, 8, labels="random", seed=s)) for s in (0, 1))
    torch.testing.assert_close(r0, r1)  # the same permutation whatever the network's seed
    assert sorted(r0.tolist()) == sorted(true.tolist())  # a permutation of the true labels, class counts kept
    assert (r0 != true).float().mean() > 0.75  # about 90% change for 10 balanced classes


def test_band_plots_draw_mean_and_min_max_band():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from matplotlib.collections import PolyCollection

    from replab.plotting import jamroz as jplot

    df = pd.DataFrame({"condition": ["a", "a", "b", "b"], "layer": [2, 1, 1, 2], "mean": [0.5, -0.01, 2.0, 3.0],
                       "min": [0.4, -0.02, 1.5, 2.5], "max": [0.6, 0.1, 2.5, 3.5]})
    ax = jplot.layer_bands(df, order=["a", "b"])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1e-3, 0.5])  # sorted by layer, clamped for the log axis
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [2.0, 3.0])
    assert ax.get_yscale() == "log" and sum(isinstance(c, PolyCollection) for c in ax.collections) == 2
    ax = jplot.beta_bands(df.rename(columns={"layer": "beta", "condition": "objective"}))
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [-0.01, 0.5])
    # several rows per β (one per kept sweep): the mean as the line, the min-max as a band; one row: no band
    q = pd.DataFrame({"objective": ["m"] * 5, "codes": ["dp", "dp", "dp", "prior", "prior"],
                      "beta": [1.0, 1.0, 10.0, 1.0, 10.0], "fd": [1.0, 3.0, 5.0, 7.0, 8.0],
                      "confidence": [0.5, 0.7, 0.9, 0.2, 0.1]})
    axes = jplot.quality_lines(q, floor={"fd": 0.5, "confidence": 0.95})
    np.testing.assert_allclose(axes[0].lines[0].get_ydata(), [2.0, 5.0])
    np.testing.assert_allclose(axes[1].lines[0].get_ydata(), [0.6, 0.9])
    np.testing.assert_allclose(axes[0].lines[1].get_ydata(), [7.0, 8.0])
    assert sum(isinstance(c, PolyCollection) for c in axes[0].collections) == 1
    plt.close("all")


def test_the_frechet_classifier_of_celeba_learns_its_attributes(tmp_path, monkeypatch, write_celeba):
    table = write_celeba(tmp_path / "data")
    monkeypatch.setenv("REPLAB_DATA", str(tmp_path / "data"))
    assert jamroz.classifier_targets("celeba") == ("binary_cross_entropy", 3) and jamroz.has_labels("celeba")
    training = _training("celeba", n_train=0, epochs=60, batch_size=12)
    cfg = jamroz.cnn_config(training, 8)
    assert cfg.objective == "binary_cross_entropy" and cfg.model.n_classes == 3 and cfg.model.image_size == 64
    classifier, reference, floor = jv.frechet_setup(training, 8, n_real=12, cache=ArtifactCache(tmp_path / "cache"))
    assert classifier.config == cfg and reference.shape == (12, cfg.model.layout[-1][0])
    # accuracy is the mean over attributes, checked against the attribute file
    test = table[3::4]
    with torch.no_grad():
        images = jamroz.real_images("celeba", 12, seed=0)  # the whole test split, in file order
        logits = classifier.model(images)
    expected = ((logits > 0).long().numpy() == test).mean()
    assert jamroz.accuracy(classifier, "test") == pytest.approx(expected) and expected > 0.7  # chance: 0.5
    assert jamroz.accuracy(classifier, "train") > 0.8  # trained: 0.91-1.0 depending on the CPU's float path
    # confidence: the mean of max(p, 1 − p) over images and attributes of the sigmoid outputs
    q = jv.sample_quality(classifier, images, reference)
    p = torch.sigmoid(logits.double())
    assert q["fd"] == pytest.approx(0.0, abs=1e-6)
    assert q["confidence"] == pytest.approx(float(torch.maximum(p, 1 - p).mean()), rel=1e-6)
    assert 0.5 <= floor["confidence"] <= 1.0 and floor["fd"] >= 0
    # grey images carry no attribute: far from the real ones in the classifier's features (how sure it is of them
    # depends on the CPU's floating-point path, so that is only bounded)
    grey = torch.full((12, 3, 64, 64), 0.5)
    assert (g := jv.sample_quality(classifier, grey, reference))["fd"] > 0.1 and 0.5 <= g["confidence"] <= 1


def test_celeba_without_attributes_has_no_frechet_classifier(tmp_path, monkeypatch, write_celeba):
    write_celeba(tmp_path, n=8)
    (tmp_path / "list_attr_celeba.txt").unlink()
    monkeypatch.setenv("REPLAB_DATA", str(tmp_path))
    assert jamroz.classifier_targets("celeba") is None and not jamroz.has_labels("celeba")
    training = _training("celeba", n_train=0, epochs=1, batch_size=2)
    assert jv.frechet_setup(training, 8, n_real=2) == (None, None, None)
    setup = jv.QualitySetup({}, *jv.frechet_setup(training, 8, n_real=2))
    assert not setup.labelled and "no Fréchet classifier" in setup.summary()
    with pytest.raises(ValueError, match="has neither class labels nor binary attributes"):
        jamroz.cnn_config(training, 8)


def test_cnn_sections_train_each_condition_and_score_every_layer(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path))
    m = jamroz.Memorisation(dataset="mnist10k", depth=8, n_train=50, epochs=1, batch_size=25, lr=0.01, n_nets=2,
                            n_groups=1, n_images=20, d=2, n_sweeps=6, burn_in=2, thin=2, n_samples=100, width=16)
    runs, acc = jamroz.memorisation_nets(m, seed=3)
    assert list(runs) == list(jamroz.CONDITIONS) and [r.config.seed for r in runs["random labels"]] == [3, 4]
    assert [r.config.random_labels for r in runs["true labels"] + runs["random labels"]] == [False] * 2 + [True] * 2
    assert list(acc["seed"]) == [3, 4, 3, 4] and acc[["train accuracy", "test accuracy"]].stack().between(0, 1).all()
    re = jamroz.memorisation_complexity(runs, m, seed=3)
    assert len(re) == 2 * 8 and list(re["layer"][:8]) == list(range(1, 9)) and (re["d"] <= 2).all()
    # the same as the helpers called one by one
    points = jamroz.cnn_fingerprints(runs["true labels"], jamroz.probe_images("mnist10k", 20, seed=3), 2)
    alone = jamroz.layer_complexity(points, m, seed=3, condition="true labels")
    assert re[re["condition"] == "true labels"].reset_index(drop=True).equals(alone.assign(group=0)[re.columns])
    # two groups: each net of a condition modelled alone, in seed order
    two = jamroz.memorisation_complexity(runs, dataclasses.replace(m, n_groups=2), seed=3)
    assert len(two) == 2 * 2 * 8 and list(two["group"].unique()) == [0, 1]
    points = jamroz.cnn_fingerprints(runs["random labels"][1:], jamroz.probe_images("mnist10k", 20, seed=3), 2)
    alone = jamroz.layer_complexity(points, m, seed=3)
    got = two[(two["condition"] == "random labels") & (two["group"] == 1)].reset_index(drop=True)
    assert np.allclose(got["mean"], alone["mean"])
    r = jamroz.Regularisation(dataset="mnist10k", depth=8, n_train=50, epochs=1, batch_size=25, lr=0.01, n_nets=2,
                              n_groups=1, n_images=20, d=2, n_sweeps=6, burn_in=2, thin=2, n_samples=100, widths=(16,),
                              regularisers=("none", "dropout"))
    runs, acc = jamroz.regularisation_nets(r, seed=3)
    assert list(runs) == [(16, "none"), (16, "dropout")] and len(acc) == 4
    assert runs[16, "none"][0].key == jamroz.memorisation_nets(m, seed=3)[0]["true labels"][0].key  # shared nets
    assert set(jamroz.regularisation_complexity(runs, r, seed=3)["regulariser"]) == {"none", "dropout"}


def test_vae_sections_decode_and_score_every_source(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path))
    v = jv.VAESweep(**{**VAE, "latent_dim": 3})
    q = jv.Quality(n_show=4, n_quality=30, classifier_depth=8, classifier_width=8, classifier_n_train=50,
                   classifier_epochs=1, classifier_batch_size=25)
    setup = jv.quality_setup(v, q, seed=0)
    assert list(setup.runs) == [(n, b, 0) for n in jv.OBJECTIVES for b in v.betas] and setup.labelled
    assert setup.reference.shape == (30, 8) and "classifier test accuracy" in setup.summary()
    re, tc = jv.latent_table(setup.runs, v, "re", 0), jv.latent_table(setup.runs, v, "tc", 0)
    info = jv.latent_information(setup.runs["MMD-VAE", 10.0, 0], v, seed=0)
    assert re.iloc[-1]["mean"] == info["re"]["mean"] and tc.iloc[-1]["max"] == info["tc"]["max"]
    rows, quality = jv.joint_vs_factorial(setup, v, q, seed=0)
    assert len(rows) == 6 and all(images.shape == (4, 1, 28, 28) for images in rows.values())
    assert list(quality["codes"]) == ["p(z*)", "p_ind(z*)"] * 3 and (quality["fd"] > 0).all()
    rows, quality = jv.prior_vs_dpgmm(setup, v, q, seed=0)
    n_traces = jv.fit_latents(setup.runs["β-VAE", 0.1, 0], v, seed=0)[0].n_traces_
    assert len(quality) == 4 * (1 + n_traces) and len(rows) == 8
    # a row is the quality of its own decoded images: the prior codes of the largest-β MMD-VAE, again
    run = setup.runs["MMD-VAE", 10.0, 0]
    z = jv.draw_codes("prior", 30, seed=0, latent_dim=3, variance=2.0)
    want = jv.sample_quality(setup.classifier, jv.decode(run.model, z), setup.reference)
    got = quality[(quality["objective"] == "MMD-VAE") & (quality["beta"] == 10.0) & (quality["codes"] == "prior")]
    assert got[["fd", "confidence"]].iloc[0].to_dict() == want
    assert set(quality["seed"]) == {0}
    bands = jv.over_seeds(re.assign(seed=0))
    by = ["objective", "beta"]
    assert np.allclose(bands.set_index(by)["mean"], re.set_index(by)["mean"].reindex(bands.set_index(by).index))
