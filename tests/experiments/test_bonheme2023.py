"""Tests of the Bonheme & Grześ 2023 experiments (replab.experiments.bonheme2023), of transfer (replab.transfer)
and of the reconstruction loss at the posterior mean (replab.objectives.reconstruction_loss)."""
import numpy as np
import pandas as pd
import pytest
import torch

from replab import models
from replab.cache import ArtifactCache
from replab.experiments import bonheme2023 as B
from replab.models import layer_module, prepare_transfer
from replab.objectives import reconstruction_loss
from replab.train import TrainConfig, train
from replab.transfer import ImageSet, decoder_layers, retrain_schedule, transfer

SMALL = models.Conv64Config(image_size=16, widths=(4, 4, 8, 8), hidden=16, latent_dim=3)


def _model(seed=0):
    torch.manual_seed(seed)
    return models.build(SMALL)


def _params_of(model, names):
    return {id(p) for n in names for p in layer_module(model, n).parameters()}


def _images(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ImageSet((torch.rand((n, 1, 16, 16), generator=g) < 0.3).to(torch.uint8) * 255, None, (),
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
    trainable = prepare_transfer(model, layers, reset=True, seed=3)
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
    trainable = prepare_transfer(model, ["output", "decoder.5"], reset=False)
    assert {id(p) for p in trainable} == _params_of(model, ["output", "decoder.5"])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    legacy = _model()
    assert prepare_transfer(legacy, ["output"], reset=False, legacy_freeze_when_not_reset=True) == []
    assert not any(p.requires_grad for p in legacy.parameters())
    # with reset the public script does unfreeze
    assert prepare_transfer(_model(), ["output"], reset=True, legacy_freeze_when_not_reset=True)


def test_transfer_changes_only_the_retrained_layers(source_run):
    target = _images()
    layers = retrain_schedule(source_run.model, 2, "outermost")
    model = transfer(source_run, target, layers, steps=3, batch_size=16, cache=False)
    src = source_run.model.state_dict()
    fresh = _model()
    prepare_transfer(fresh, layers, reset=True, seed=0)  # the re-initialisation transfer starts from
    for key, value in model.state_dict().items():
        retrained = key.startswith("output.") or key.startswith("decoder.5.")
        if retrained:
            assert not torch.equal(value, src[key]), key
            assert not torch.equal(value, fresh.state_dict()[key]), key  # trained after the reset
        else:
            assert torch.equal(value, src[key]), key
    again = transfer(source_run, target, layers, steps=3, batch_size=16, cache=False)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())


def test_legacy_transfer_returns_the_source_model(source_run):
    model = transfer(source_run, _images(), ["decoder.1"], steps=3, reset=False, batch_size=16,
                       legacy_freeze_when_not_reset=True, cache=False)
    assert all(torch.equal(v, source_run.model.state_dict()[k]) for k, v in model.state_dict().items())
    tuned = transfer(source_run, _images(), ["decoder.1"], steps=3, reset=False, batch_size=16, cache=False)
    assert not torch.equal(tuned.decoder["1"][0].weight, source_run.model.decoder["1"][0].weight)


def test_transfer_cache_shares_one_entry_per_layer_set(source_run, tmp_path):
    cache = ArtifactCache(tmp_path)
    target = _images()
    transfer(source_run, target, ["decoder.1", "output"], steps=2, batch_size=16, cache=cache)
    transfer(source_run, target, ["output", "decoder.1"], steps=2, batch_size=16, cache=cache)
    assert cache.hits == 1


def test_retrain_schedule_orders_and_errors():
    model = _model()
    assert decoder_layers(model) == ["decoder.1", "decoder.2", "decoder.3", "decoder.4", "decoder.5", "output"]
    assert retrain_schedule(model, 2, "innermost") == ["decoder.1", "decoder.2"]
    assert retrain_schedule(model, 2, "outermost") == ["output", "decoder.5"]
    assert retrain_schedule(model, 0) == []
    with pytest.raises(ValueError, match="k must be an integer in \\[0, 6\\]"):
        retrain_schedule(model, 7)
    with pytest.raises(ValueError, match="order must be"):
        retrain_schedule(model, 1, "middle")
    with pytest.raises(ValueError, match="not a trainable layer"):
        layer_module(model, "sampled")


# -- measurements -----------------------------------------------------------------------------------------------------
def test_reconstruction_loss_is_the_bernoulli_cross_entropy_at_the_mean():
    model = _model().eval()
    x = _images(10).float()
    with torch.no_grad():
        logits = model.decode(model.encode(x)[0])
        p = torch.sigmoid(logits).double()
        expected = -(x * torch.log(p) + (1 - x) * torch.log1p(-p)).sum(dim=(1, 2, 3)).mean()
    assert reconstruction_loss(model, x, batch_size=3) == pytest.approx(float(expected), rel=1e-5)
    assert reconstruction_loss(model, x, batch_size=3) == pytest.approx(reconstruction_loss(model, x), rel=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        reconstruction_loss(model, x, batch_size=0)


def test_first_below_and_permutation_tests():
    s = pd.Series([0.9, 0.5, 0.1, 0.05], index=[50, 90, 130, 170])
    assert B.first_below(s, 0.2) == 130 and B.first_below(s, 0.01) is None
    tests = B.permutation_tests(60, 10, 19, seed=0)
    assert list(tests[["shared", "metric"]].itertuples(index=False, name=None)) == [
        (0.8, "CKA"), (0.8, "Procrustes"), (0.0, "CKA"), (0.0, "Procrustes")]
    related = tests[tests["shared"] == 0.8]
    assert (related["p_value"] == 1 / 20).all()  # no permutation beats a pair sharing 80% of its features


def _small_cars3d_and_celeba(root, n_cars=3, n_faces=24):
    """A few Cars3D meshes (16×16 pixels, 6 azimuths, 2 elevations) and CelebA JPEGs, in the loaders' layouts."""
    from PIL import Image
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    (root / "cars").mkdir(parents=True)
    for c in range(n_cars):
        savemat(root / "cars" / f"car_{c + 1:03d}_mesh.mat",
                {"im": rng.integers(0, 256, (16, 16, 3, 6, 2), dtype=np.uint8)})
    (root / "img_align_celeba").mkdir()
    for k in range(n_faces):
        Image.fromarray(rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)).save(
            root / "img_align_celeba" / f"{k + 1:06d}.jpg")


def test_table1_exception_runs_end_to_end_on_small_cars3d_and_celeba_files(tmp_path, monkeypatch):
    from replab import profiles
    from replab.experiments import bonheme_effects as F
    from replab.experiments.bonheme2022 import Models

    _small_cars3d_and_celeba(tmp_path / "data")
    monkeypatch.setenv("REPLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache"))
    M = profiles.resolve(Models, "smoke")
    S = profiles.resolve(B.SharedVariables, "smoke", exception_datasets=["cars3d", "celeba"])
    accuracy = B.exception_accuracy(M, S)
    assert accuracy is not None
    assert set(accuracy["target"]) == {"cars3d"} and set(accuracy["source"]) == {"cars3d", "celeba"}
    assert sorted(accuracy["seed"].unique()) == list(M.seeds)
    assert set(accuracy["factor"]) == {"elevation", "azimuth", "object"}
    effect = F.cars3d_exception(accuracy)
    assert np.isfinite(effect.estimate) and effect.n["seeds"] == len(M.seeds)
