"""Page helpers of Jamroż et al. (2020): configurations, code samplers, the Fréchet distance, layer complexity."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from replab.cache import ArtifactCache
from replab.dpgmm import DPGMM
from replab.experiments import jamroz
from replab.fingerprints import PAPER_LAYER_DIMS
from replab.models import MLPConfig, MLPVAE, VGGClassifier, VGGConfig, vgg_layout


def test_cnn_config_follows_public_code_and_rejects_unknown_names():
    cfg = jamroz.cnn_config("mnist10k", depth=8, width=32, labels="random", regulariser="both", seed=3, n_train=500,
                            epochs=4, batch_size=50)
    assert cfg.random_labels and cfg.augment and cfg.model.dropout == 0.2
    assert cfg.steps == 4 * (500 // 50) and cfg.n == 500 and cfg.seed == 3 and cfg.label_seed == 0
    assert cfg.optimizer == "sgd" and cfg.nesterov and cfg.momentum == 0.9 and cfg.weight_decay == 1e-6
    assert cfg.model.layout == vgg_layout(8, 32) and cfg.model.channels == 1 and cfg.model.image_size == 28
    assert jamroz.cnn_config("mnist10k", n_train=None, epochs=1, batch_size=100).n is None  # the whole split
    with pytest.raises(ValueError, match="regulariser: expected one of"):
        jamroz.cnn_config(regulariser="mixup", n_train=100, epochs=1, batch_size=50)
    with pytest.raises(ValueError, match="labels: expected one of"):
        jamroz.cnn_config(labels="noisy", n_train=100, epochs=1, batch_size=50)
    with pytest.raises(ValueError, match="dataset: expected one of"):
        jamroz.cnn_config(dataset="imagenet")


def test_vae_config_losses_as_public_code():
    b = jamroz.vae_config("beta_vae", 4.0, n_train=200, epochs=2, batch_size=50, latent_dim=6)
    m = jamroz.vae_config("mmd_vae", 100.0, n_train=200, epochs=2, batch_size=50, latent_dim=6)
    assert b.model.output_variance == 0.3 and m.model.output_variance == 0.5
    assert m.objective_params == {"beta": 100.0, "prior_variance": 2.0, "unbiased": False}
    assert jamroz.prior_variance(m) == 2.0 and jamroz.prior_variance(b) == 1.0 and b.steps == 8
    with pytest.raises(ValueError, match="objective: expected"):
        jamroz.vae_config("beta_tc_vae", 1.0)
    with pytest.raises(ValueError, match="beta: expected a positive number"):
        jamroz.vae_config("beta_vae", 0.0)


def test_layer_dims():
    names = [f"conv.{i}" for i in range(1, 12)]
    assert list(jamroz.layer_dims("paper", 11, names).values()) == list(PAPER_LAYER_DIMS[11])
    assert set(jamroz.layer_dims(7, 11, names).values()) == {7}
    with pytest.raises(ValueError, match="d: expected a positive integer"):
        jamroz.layer_dims(0, 11, names)


@pytest.fixture(scope="module")
def correlated_dpgmm():
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    x = rng.multivariate_normal([2.0, -1.0], cov, size=300)
    return DPGMM(n_sweeps=30, burn_in=20, thin=5, seed=0).fit(x)


def test_draw_codes_joint_keeps_and_factorial_drops_dependence(correlated_dpgmm):
    joint = jamroz.draw_codes("joint", 4000, seed=1, model=correlated_dpgmm).double()
    fact = jamroz.draw_codes("factorial", 4000, seed=1, model=correlated_dpgmm).double()
    trace = jamroz.draw_codes("trace", 4000, seed=1, model=correlated_dpgmm).double()
    assert np.corrcoef(joint.T.numpy())[0, 1] > 0.8 and np.corrcoef(trace.T.numpy())[0, 1] > 0.8
    assert abs(np.corrcoef(fact.T.numpy())[0, 1]) < 0.08
    # the product of marginals has the joint's marginals: same means, similar spreads (Student-t tails aside)
    torch.testing.assert_close(fact.median(0).values, joint.median(0).values, atol=0.1, rtol=0)
    iqr = lambda t: t.quantile(0.75, 0) - t.quantile(0.25, 0)  # noqa: E731
    torch.testing.assert_close(iqr(fact), iqr(joint), atol=0.1, rtol=0)
    torch.testing.assert_close(jamroz.draw_codes("joint", 50, seed=2, model=correlated_dpgmm),
                               jamroz.draw_codes("joint", 50, seed=2, model=correlated_dpgmm))
    # "trace" draws from p(z* | c_t) of the chosen kept sweep: its mean is that sweep's mixture mean
    for t in (0, correlated_dpgmm.n_traces_ - 1):
        want = correlated_dpgmm.predictive(trace_index=t, device="cpu").mean.float()
        got = jamroz.draw_codes("trace", 20000, seed=3, model=correlated_dpgmm, trace_index=t).mean(0)
        torch.testing.assert_close(got, want, atol=0.05, rtol=0)
    torch.testing.assert_close(jamroz.draw_codes("trace", 10, seed=4, model=correlated_dpgmm),
                               jamroz.draw_codes("trace", 10, seed=4, model=correlated_dpgmm, trace_index=-1))
    with pytest.raises(ValueError, match="trace_index"):
        jamroz.draw_codes("trace", 10, model=correlated_dpgmm, trace_index=correlated_dpgmm.n_traces_)


def test_draw_codes_prior_variance_and_errors():
    z = jamroz.draw_codes("prior", 20000, seed=0, latent_dim=3, variance=2.0)
    assert z.shape == (20000, 3)
    torch.testing.assert_close(z.var(0), torch.full((3,), 2.0), atol=0.08, rtol=0)
    with pytest.raises(ValueError, match="source: expected"):
        jamroz.draw_codes("posterior", 5, model=object())
    with pytest.raises(ValueError, match="a fitted DPGMM is needed"):
        jamroz.draw_codes("joint", 5)


def test_layer_complexity_separates_a_mixture_from_a_gaussian():
    rng = np.random.default_rng(0)
    gauss = torch.as_tensor(rng.normal(size=(240, 2)))
    centres = rng.choice([-4.0, 4.0], size=(240, 1))
    mixture = torch.as_tensor(np.hstack([centres + rng.normal(size=(240, 1)), rng.normal(size=(240, 1))]))
    df = jamroz.layer_complexity({"conv.1": gauss, "conv.2": mixture}, n_sweeps=40, burn_in=20, thin=5,
                                 n_samples=2000, seed=0, condition="toy")
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


def test_latent_codes_and_decode():
    torch.manual_seed(0)
    model = MLPVAE(MLPConfig(latent_dim=3, likelihood="gaussian", output_variance=0.3)).eval()
    x = torch.randint(0, 256, (7, 1, 28, 28), dtype=torch.uint8)
    mu = jamroz.latent_codes(model, x, sampled=False)
    torch.testing.assert_close(mu, model.encode(x.float() / 255)[0].double())
    z1, z2 = jamroz.latent_codes(model, x, seed=4), jamroz.latent_codes(model, x, seed=4)
    torch.testing.assert_close(z1, z2)
    assert not torch.allclose(z1, mu)
    img = jamroz.decode(model, 10 * torch.randn(5, 3))
    assert img.shape == (5, 1, 28, 28) and img.min() >= 0 and img.max() <= 1


def test_tiny_grid_trains_memorises_and_scores(tmp_path):
    cache = ArtifactCache(tmp_path)
    cfgs = [jamroz.cnn_config("mnist10k", 8, 8, labels=lab, n_train=50, epochs=1, batch_size=25)
            for lab in ("true", "random")]
    runs = jamroz.train_runs(cfgs, cache=cache)
    assert len(runs) == 2 and cache.exists("train", cfgs[0])
    hits = cache.hits
    again = jamroz.train_runs(cfgs[:1], cache=cache)[0]  # loaded under the lock, not trained again
    assert cache.hits == hits + 1 and again.key == runs[0].key
    assert cache.path("train", cfgs[0]).with_suffix(".lock").is_file()  # trained under the key's lock
    # "train" accuracy is measured against the labels the net was trained on (permuted for the random run)
    for run in runs:
        assert 0.0 <= jamroz.accuracy(run, "train") <= 1.0
    real = jamroz.real_images("mnist10k", 40, seed=0)
    q = jamroz.sample_quality(runs[0], real, real)
    assert q["fd"] == pytest.approx(0.0, abs=1e-6) and 0.1 <= q["confidence"] <= 1.0
    # one pass gives the last block's pooled output and the softmax of the head, as two separate forward passes
    feats, probs = jamroz.classifier_outputs(runs[0], real)
    with torch.no_grad():
        h = real
        for block in runs[0].model.blocks.values():
            h = block(h)
        torch.testing.assert_close(feats, h.mean((2, 3)).double(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(probs, torch.softmax(runs[0].model(real), 1).double(), rtol=1e-5, atol=1e-6)
    other = jamroz.real_images("mnist10k", 30, seed=1)
    by_images = jamroz.sample_quality(runs[0], other, real)
    assert jamroz.sample_quality(runs[0], other, feats) == pytest.approx(by_images)  # features as the reference
    assert by_images["fd"] > 0
    with pytest.raises(ValueError, match=r"images: expected a tensor of shape \(n, C, H, W\)"):
        jamroz.classifier_outputs(runs[0], real[0])


def test_random_labels_are_one_fixed_permutation_for_every_seed():
    from replab.train import classifier_targets, load_data

    def labels_of(cfg):
        images, labels = load_data(cfg, None, (1, 28, 28))  # the training subset and its true labels
        return classifier_targets(cfg, labels, len(images))

    true = labels_of(jamroz.cnn_config("mnist10k", 8, 8, n_train=300, epochs=1, batch_size=50))
    r0, r1 = (labels_of(jamroz.cnn_config("mnist10k", 8, 8, labels="random", seed=s, n_train=300, epochs=1,
                                          batch_size=50)) for s in (0, 1))
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
    cfg = jamroz.cnn_config("celeba", 8, 8, n_train=None, epochs=60, batch_size=12)
    assert cfg.objective == "binary_cross_entropy" and cfg.model.n_classes == 3 and cfg.model.image_size == 64
    classifier, reference, floor = jamroz.frechet_setup("celeba", 8, 8, None, 60, 12, n_real=12,
                                                        cache=ArtifactCache(tmp_path / "cache"))
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
    q = jamroz.sample_quality(classifier, images, reference)
    p = torch.sigmoid(logits.double())
    assert q["fd"] == pytest.approx(0.0, abs=1e-6)
    assert q["confidence"] == pytest.approx(float(torch.maximum(p, 1 - p).mean()), rel=1e-6)
    assert 0.5 <= floor["confidence"] <= 1.0 and floor["fd"] >= 0
    # grey images carry no attribute: far from the real ones in the classifier's features (how sure it is of them
    # depends on the CPU's floating-point path, so that is only bounded)
    grey = torch.full((12, 3, 64, 64), 0.5)
    assert (g := jamroz.sample_quality(classifier, grey, reference))["fd"] > 0.1 and 0.5 <= g["confidence"] <= 1


def test_celeba_without_attributes_has_no_frechet_classifier(tmp_path, monkeypatch, write_celeba):
    write_celeba(tmp_path, n=8)
    (tmp_path / "list_attr_celeba.txt").unlink()
    monkeypatch.setenv("REPLAB_DATA", str(tmp_path))
    assert jamroz.classifier_targets("celeba") is None and not jamroz.has_labels("celeba")
    assert jamroz.frechet_setup("celeba", 8, 8, None, 1, 2, n_real=2) == (None, None, None)
    with pytest.raises(ValueError, match="has neither class labels nor binary attributes"):
        jamroz.cnn_config("celeba", 8, 8, epochs=1, batch_size=2)
