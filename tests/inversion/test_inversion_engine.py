"""The inversion models through the training engine: a stacked group of PixelCNN++ members equals their solo runs,
an interrupted run resumes to exactly the weights of an uninterrupted one (its best evaluation included), and keys
follow the validation data (that they follow the model's own code: tests/train/test_checkpoints_and_keys.py)."""
import dataclasses

import pandas as pd
import pytest
import torch

from replab import models as M
from replab.cache import ArtifactCache
from replab.inversion import MSEDecoderConfig, PixelCNNConfig, cross_entropy
from replab.train import TrainConfig, group_signature, load_run, run_key, train, train_group

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SPATIAL = PixelCNNConfig(image_shape=(1, 6, 6), n_filters=4, n_res=1, dropout=0.3, context_shape=(2, 3, 3),
                         context_dropout=0.2)
BASE = TrainConfig(SPATIAL, objective="conditional_nll", dataset="in-memory", batch_size=8, steps=24, lr=2e-3,
                   lr_decay=0.99, snapshot_steps=(0, 12), eval_every=8, device="cpu")


def _pairs(seed: int, n: int = 32, context_shape=(2, 3, 3)):
    """8-bit images whose top-left 3×3 block is coded by the context (so conditioning helps), and the context."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 6, 6), generator=g, dtype=torch.uint8)
    context = torch.randn(n, *context_shape, generator=g)
    images[:, :, :3, :3] = (torch.sigmoid(context[:, :1]) * 255).round().to(torch.uint8)
    return images, context


@pytest.mark.parametrize("device", DEVICES)
def test_a_stacked_group_of_pixelcnn_members_gives_each_its_solo_run(device, monkeypatch):
    """Three members with their own seeds, training sets (images and contexts) and validation sets: each ends
    with the weights, snapshots, losses, evaluations and kept (best) weights of its solo run."""
    # cuDNN convolutions default to TensorFloat-32 (10-bit mantissas), far coarser than float tolerance
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    configs = [dataclasses.replace(BASE, seed=s, device=device) for s in (3, 4, 5)]
    data = [_pairs(10 + i) for i in range(3)]
    val = [_pairs(20 + i, n=12) for i in range(3)]
    assert len({group_signature(c) for c in configs}) == 1
    solo = [train(c, cache=False, data=d, val_data=v) for c, d, v in zip(configs, data, val)]
    stacked = train_group(configs, cache=False, data=data, val_data=val)
    atol = 2e-5 if device == "cpu" else 1e-4  # CUDA picks other convolution kernels for the stacked batch
    for one, member in zip(solo, stacked):
        for name, value in one.model.state_dict().items():
            torch.testing.assert_close(member.model.state_dict()[name].cpu(), value.cpu(), rtol=1e-4, atol=atol)
        for step in (0, 12):
            for name, value in one.snapshots[step].items():
                torch.testing.assert_close(member.snapshots[step][name], value, rtol=1e-4, atol=atol)
        pd.testing.assert_frame_equal(member.metrics, one.metrics, check_exact=False, rtol=1e-4, atol=1e-4)
        assert member.best_step == one.best_step
        assert list(one.metrics.dropna(subset=["eval"])["step"]) == [8, 16, 24]
    first = solo[0].model.state_dict()
    assert all(not torch.equal(first[n], s.model.state_dict()[n]) for s in solo[1:] for n in list(first)[:2])


def test_the_weight_normalised_layers_start_from_their_data_dependent_initialisation():
    """Salimans & Kingma's initialisation: on the seeded first batch (max(B, 16) examples drawn with the run's
    seed) the first layer's outputs have mean 0 and standard deviation 1 per channel at step 0."""
    images, context = _pairs(4)
    run = train(dataclasses.replace(BASE, steps=2, snapshot_steps=(0,), eval_every=None), cache=False,
                data=(images, context))
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(BASE.seed))[:16]
    x = images[idx].float() * (2 / 255) - 1  # the [-1, 1] scale the network reads
    with torch.no_grad():
        y = run.model_at(0).in_u(torch.cat([x, torch.ones_like(x[:, :1])], 1))
    torch.testing.assert_close(y.mean((0, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std((0, 2, 3), correction=0), torch.ones(4), atol=1e-4, rtol=0)


def test_the_evaluation_is_the_held_out_nll_and_the_kept_model_is_the_best_evaluated():
    images, context = _pairs(1)
    val = _pairs(2, n=12)
    config = dataclasses.replace(BASE, steps=24, eval_every=4, snapshot_steps=(4, 8, 12, 16, 20, 24))
    run = train(config, cache=False, data=(images, context), val_data=val)
    evals = run.metrics.dropna(subset=["eval"]).set_index("step")["eval"]
    assert list(evals.index) == [4, 8, 12, 16, 20, 24]
    for step, value in evals.items():  # an independent evaluation of each snapshot: Eq. 11 on the held-out pairs
        model = run.model_at(step)
        assert value == pytest.approx(cross_entropy(model, *val, device="cpu").nats_per_image, rel=1e-5)
    assert run.best_step == int(evals.idxmin()) and run.best_eval == pytest.approx(float(evals.min()))
    for name, value in run.snapshots[run.best_step].items():
        assert torch.equal(run.model.state_dict()[name], value), name


@pytest.mark.parametrize("device", DEVICES)
def test_an_interrupted_inversion_model_resumes_with_the_weights_of_an_uninterrupted_run(tmp_path, device):
    """Killed after 14 of 24 updates (checkpoints every 5), the run resumes from update 10 and ends with exactly
    the weights, snapshots, metrics (learning rates and evaluations included) and kept best state of a run that was
    never interrupted."""
    config = dataclasses.replace(BASE, checkpoint_every=5, device=device)
    data, val = _pairs(1), _pairs(2, n=12)
    cache = ArtifactCache(tmp_path / "a")

    def interrupt(step, logs):
        if step == 14:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, cache, data=data, val_data=val, callbacks=[interrupt])
    assert load_run(config, cache, data=data, val_data=val) is None
    seen = []
    resumed = train(config, cache, data=data, val_data=val, callbacks=[lambda step, logs: seen.append(step)])
    assert seen == list(range(11, 25))
    whole = train(config, cache=False, data=data, val_data=val)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value.cpu(), resumed.model.state_dict()[name].cpu()), name
    for step in (0, 12):
        for name, value in whole.snapshots[step].items():
            assert torch.equal(value, resumed.snapshots[step][name])
    pd.testing.assert_frame_equal(whole.metrics, resumed.metrics)
    assert (whole.best_step, whole.best_eval) == (resumed.best_step, resumed.best_eval)
    assert not list((tmp_path / "a" / "_checkpoints").rglob("*.pt"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bfloat16 autocast (amp) acts on CUDA only")
def test_mixed_precision_gives_the_float32_loss_to_bfloat16_accuracy():
    """Under amp the network runs in bfloat16 and the likelihood in float32: the first update's loss (the same
    initial weights) agrees with the float32 run to bfloat16's precision, and training stays finite."""
    data = _pairs(1)
    exact = train(dataclasses.replace(BASE, device="cuda", eval_every=None), cache=False, data=data)
    mixed = train(dataclasses.replace(BASE, device="cuda", eval_every=None, amp=True), cache=False, data=data)
    assert mixed.metrics["loss"].iloc[0] == pytest.approx(exact.metrics["loss"].iloc[0], rel=2e-2)
    assert mixed.metrics["loss"].notna().all() and torch.isfinite(torch.tensor(mixed.metrics["loss"].values)).all()


def test_an_unconditional_model_and_the_mse_decoder_train_through_the_engine():
    images, context = _pairs(3)
    uncond = TrainConfig(dataclasses.replace(SPATIAL, context_shape=None), objective="conditional_nll",
                         dataset="in-memory", batch_size=8, steps=3, device="cpu")
    run = train(uncond, cache=False, data=(images, None))
    assert run.model.config.context_shape is None and len(run.metrics) == 3
    dec = TrainConfig(MSEDecoderConfig((2, 3, 3), (1, 6, 6), width=4), objective="reconstruction_mse",
                      dataset="in-memory", batch_size=8, steps=3, device="cpu")
    assert train(dec, cache=False, data=(images, context)).model(context[:2]).shape == (2, 1, 6, 6)
    with pytest.raises(ValueError, match="uint8"):
        train(uncond, cache=False, data=(images.float() / 255, None))
    with pytest.raises(ValueError, match="one row per image"):
        train(dataclasses.replace(dec, seed=1), cache=False, data=(images, context[:5]))
    with pytest.raises(ValueError, match="val_data"):
        train(dataclasses.replace(dec, eval_every=2), cache=False, data=(images, context))


def test_models_are_registered_once():
    assert M.build(SPATIAL).config == SPATIAL
    M.register(PixelCNNConfig, type(M.build(SPATIAL)))  # the same pair again: nothing changes
    with pytest.raises(ValueError, match="already builds"):
        M.register(PixelCNNConfig, torch.nn.Linear)
    with pytest.raises(ValueError, match="dataclass"):
        M.register(dict, torch.nn.Linear)


def test_keys_follow_the_validation_data_and_the_model():
    data, val = _pairs(1), _pairs(2, n=12)
    key = run_key(BASE, data, val)
    assert run_key(BASE, data, _pairs(3, n=12)) != key
    assert run_key(dataclasses.replace(BASE, lr_decay=0.9), data, val) != key
    assert run_key(dataclasses.replace(BASE, device="auto", amp=True, checkpoint_every=3), data, val) == key
