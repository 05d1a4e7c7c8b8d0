"""Tests of the models of the inversion study as cached runs (:mod:`replab.inversion.runs`): coarse images,
centroids, cached classifiers and inversion models."""
import dataclasses

import pytest
import torch

from replab.cache import ArtifactCache
from replab.inversion import ink_centroid, position_error, runs


def test_coarse_inverts_upsample_and_averages():
    x = torch.randint(0, 256, (3, 1, 7, 5), dtype=torch.uint8)
    assert torch.equal(runs.coarse(runs.upsample(x, 4), 4), x)
    block = torch.tensor([[[[0, 10], [20, 31]]]], dtype=torch.uint8)
    assert int(runs.coarse(block, 2)) == round((0 + 10 + 20 + 31) / 4)
    assert torch.equal(runs.coarse(x, 1), x)
    with pytest.raises(ValueError, match="factor"):
        runs.coarse(x, 3)
    with pytest.raises(ValueError, match="uint8"):
        runs.coarse(x.float(), 1)


def test_ink_centroid_and_position_error_against_hand_values():
    img = torch.zeros(2, 1, 9, 9, dtype=torch.uint8)
    img[0, 0, 2, 5] = 255
    img[1, 0, 1, 4] = 100
    img[1, 0, 1, 6] = 100
    assert torch.allclose(ink_centroid(img), torch.tensor([[2.0, 5.0], [1.0, 5.0]]))
    shifted = torch.roll(img, shifts=(3, -4), dims=(2, 3))       # 3 down, 4 left (no wrapping): distance 5
    assert position_error(img, shifted[:, None], scale=2.0) == pytest.approx(10.0)
    assert position_error(img, torch.stack([img, img], 1)) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="samples"):
        position_error(img, img)


def test_cached_classifier_snapshots_and_shared_unconditional_model(tmp_path):
    cache = ArtifactCache(tmp_path)
    data = runs.coarse_data("mnist10k", 64, 16, 4, seed=0)
    assert data.train.shape[1:] == (1, 7, 7) and data.full(data.train).shape[1:] == (1, 28, 28)
    cfg = runs.ClassifierSpec(n_train=64, factor=4, steps=3, batch_size=16, conv_channels=(4, 4), fc_units=8,
                                 snapshots=(0, 3), n_test=16)
    a, acc = runs.classifier(cfg, cache=cache)
    b, _ = runs.classifier(cfg, cache=cache)
    init, _ = runs.classifier(cfg, snapshot=0, cache=cache)
    assert 0.0 <= acc <= 1.0
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.layer1.weight, init.layer1.weight)       # 3 updates moved the weights
    with pytest.raises(ValueError, match="snapshot"):
        runs.classifier(cfg, snapshot=2, cache=cache)
    kw = dict(n_filters=2, n_res=1, steps=1, batch_size=8, cache=cache)
    model, ce = runs.inversion(cfg, "FC3", data, **kw)
    assert ce["n_images"] == 16 and ce["nats_per_image"] > 0
    # The unconditional model does not depend on the classifier: a second architecture reuses it.
    _, h1 = runs.inversion(cfg, None, data, **kw)
    _, h2 = runs.inversion(dataclasses.replace(cfg, variant="global_pool"), None, data, **kw)
    assert h1 == h2
    stored = [e["config"]["train"]["model"]["__class__"] for e in cache.entries("train")]
    assert stored.count("PixelCNNConfig") == 2 and stored.count("ClassifierConfig") == 1


def test_load_rejects_unknown_dataset():
    with pytest.raises(ValueError, match="dataset"):
        runs.coarse_data("cifar100", 10, 10, 1)


def test_paper_settings_per_dataset():
    """Appendix A: softmax for grey pixels, 10 logistics for colour; dropout 0.1 only for CONV1 on SVHN and
    CIFAR-10; context dropout 0.2 only for CIFAR-10's FC3; classifier widths (32, 32) and (64, 128)."""
    grey = runs.paper_inversion_settings("mnist10k", "CONV1")
    assert grey == {"likelihood": "softmax", "n_mix": 1, "dropout": 0.5, "context_dropout": 0.0}
    assert runs.paper_inversion_settings("svhn", "CONV1")["dropout"] == 0.1
    assert runs.paper_inversion_settings("svhn", "FC3") == {"likelihood": "logistic", "n_mix": 10, "dropout": 0.5,
                                                            "context_dropout": 0.0}
    assert runs.paper_inversion_settings("cifar10", "FC3")["context_dropout"] == 0.2
    assert runs.paper_inversion_settings("cifar10", None)["context_dropout"] == 0.0
    assert runs.ClassifierSpec("mnist10k").conv_channels == (32, 32)
    assert runs.ClassifierSpec("cifar10").conv_channels == (64, 128)
    assert runs.is_colour("svhn") and not runs.is_colour("affmnist")
    with pytest.raises(ValueError, match="dataset"):
        runs.is_colour("imagenet")


def test_colour_dataset_runs_the_colour_models(tmp_path, monkeypatch):
    """With CIFAR-10-shaped data (a stand-in for the real files), the classifier has the colour widths and the
    inversion models a logistic mixture with the dataset's dropouts."""
    from replab.data import ImageDataset

    def fake_load(name, split="train", **kw):
        assert name == "cifar10"
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        return ImageDataset(torch.randint(0, 256, (40, 3, 32, 32), generator=g, dtype=torch.uint8),
                            labels=torch.randint(0, 10, (40,), generator=g), name=name)

    monkeypatch.setattr(runs._data, "load", fake_load)
    cache = ArtifactCache(tmp_path)
    data = runs.coarse_data("cifar10", 16, 8, 4)
    assert data.train.shape[1:] == (3, 8, 8)
    cfg = runs.ClassifierSpec("cifar10", n_train=16, factor=4, steps=2, batch_size=8, n_test=8)
    clf, _ = runs.classifier(cfg, cache=cache, device="cpu")
    assert clf.shapes["CONV1"] == (64, 14, 14) and clf.shapes["CONV2"] == (128, 5, 5)
    kw = dict(n_filters=2, n_res=1, steps=1, batch_size=8, cache=cache, device="cpu")
    m1, ce = runs.inversion(cfg, "CONV1", data, **kw)
    m3, _ = runs.inversion(cfg, "FC3", data, **kw)
    assert m1.config.likelihood == "logistic" and m1.config.n_mix == 10 and m1.config.dropout == 0.1
    assert m3.config.dropout == 0.5 and m3.config.context_dropout == 0.2
    assert ce["n_dims"] == 3 * 8 * 8 and ce["nats_per_image"] > 0


def test_inversions_of_one_shape_train_as_one_group_and_equal_their_solo_runs(tmp_path):
    """FC3 of two snapshots stack into one group (each stored as its own run, each equal to its solo run to float
    tolerance); an unconditional model asked for twice trains once."""
    data = runs.coarse_data("mnist10k", 48, 16, 4, seed=0)
    cfg = runs.ClassifierSpec(n_train=48, factor=4, steps=3, batch_size=16, conv_channels=(4, 4), fc_units=8,
                                 snapshots=(0, 3), n_test=16)
    kw = dict(n_filters=2, n_res=1, steps=4, batch_size=8, device="cpu")
    requests = [(cfg, "FC3", 0), (cfg, "FC3", 3), (cfg, None, None), (dataclasses.replace(cfg, variant="global_pool"), None, None)]
    grouped = runs.inversions(requests, data, ArtifactCache(tmp_path / "group"), **kw)
    solo = [runs.inversion(c, layer, data, snapshot=snap, cache=ArtifactCache(tmp_path / "solo"), **kw)
            for c, layer, snap in requests[:3]]
    for (model, ce), (one, one_ce) in zip(grouped, solo):
        torch.testing.assert_close(model.state_dict(), one.state_dict(), rtol=1e-4, atol=2e-5)
        assert ce["nats_per_image"] == pytest.approx(one_ce["nats_per_image"], rel=1e-4)
    assert not torch.equal(grouped[0][0].out.v, grouped[1][0].out.v)  # two snapshots, two models
    assert grouped[2][1] == grouped[3][1]
    stored = [e["config"]["train"]["model"]["__class__"] for e in ArtifactCache(tmp_path / "group").entries("train")]
    assert stored.count("PixelCNNConfig") == 3


def test_per_image_measures_agree_with_their_means_and_closed_forms():
    from replab.inversion.information import CrossEntropy, pixel_distance, position_errors, slant_and_ink

    nll = torch.tensor([1.0, 2.0, 6.0], dtype=torch.float64)
    ce = CrossEntropy.of(nll, 4)
    assert ce.nats_per_image == pytest.approx(3.0) and ce.stderr_nats == pytest.approx(float(nll.std()) / 3 ** 0.5)
    img = torch.zeros(2, 1, 9, 9, dtype=torch.uint8)
    img[0, 0, 2, 5] = 255
    img[1, 0, 1, 4] = 255
    shifted = torch.roll(img, shifts=(3, -4), dims=(2, 3))           # distance 5 for both
    errs = position_errors(img, torch.stack([img, shifted], 1), scale=2.0)
    assert errs.tolist() == pytest.approx([5.0, 5.0])                  # mean of 0 and 10 per image
    assert position_error(img, torch.stack([img, shifted], 1), scale=2.0) == pytest.approx(5.0)
    assert pixel_distance(img, img).tolist() == [0.0, 0.0]
    assert pixel_distance(img[:1], 255 - img[:1]).item() == pytest.approx(1.0)
    # a line sheared by one column per row has slant 1; its mirror image -1; ink is the mean intensity
    line = torch.zeros(1, 1, 6, 6, dtype=torch.uint8)
    for r in range(6):
        line[0, 0, r, r] = 255
    feats = slant_and_ink(torch.cat([line, line.flip(-1)]))
    assert feats[:, 0].tolist() == pytest.approx([1.0, -1.0])
    assert feats[0, 1].item() == pytest.approx(6 / 36)


def test_distance_arrays_average_to_the_table_distances():
    from replab.inversion.information import distance_arrays, representation_distances

    class Flat:
        def extract(self, x, layer, batch_size=None):
            return x.float().flatten(1)

    torch.manual_seed(0)
    test = torch.randint(0, 256, (4, 1, 3, 3), dtype=torch.uint8)
    train = torch.randint(0, 256, (7, 1, 3, 3), dtype=torch.uint8)
    samples = torch.randint(0, 256, (4, 3, 1, 3, 3), dtype=torch.uint8)
    arrays = distance_arrays(Flat(), "FC3", test, samples, train, batch_size=2)
    means = representation_distances(Flat(), "FC3", test, samples, train, batch_size=2)
    for name in ("1NN", "IM-S", "IM-NN"):
        assert arrays[name].shape == (4,) and float(arrays[name].mean()) == pytest.approx(means[name])
    brute = torch.stack([(train.float().flatten(1) - t.float().flatten()).abs().mean(1).min() for t in test])
    torch.testing.assert_close(arrays["1NN"], brute)
