"""Transfer runs through the engine: start from a stored run, train only named layers (re-initialised or
fine-tuned), resume after an interruption, and stack like any other run."""
import dataclasses

import pytest
import torch

from replab import models as M
from replab.cache import ArtifactCache
from replab.train import TrainConfig, load_run, train, train_group

SOURCE = TrainConfig(M.FCConfig(latent_dim=3, input_shape=(1, 6, 6), encoder_widths=(12,), decoder_widths=(12, 12)),
                     objective="beta_vae", objective_params={"beta": 2.0}, dataset="synthetic", n=40, batch_size=8,
                     steps=15, lr=3e-3)
TARGET = (torch.rand(48, 1, 6, 6, generator=torch.Generator().manual_seed(7)) < 0.5).to(torch.uint8) * 255
LAYERS = ("decoder.2", "output")


def _transfer(source_key: str, **change) -> TrainConfig:
    fields = dict(init_from=source_key, train_layers=LAYERS, reset_layers=True, steps=16, checkpoint_every=4,
                  snapshot_steps=(0, 16), n=None, dataset="target")
    fields.update(change)
    return dataclasses.replace(SOURCE, **fields)


@pytest.fixture
def source(tmp_path):
    cache = ArtifactCache(tmp_path / "cache")
    return train(SOURCE, cache), cache


def _trainable(model):
    return {n for name in LAYERS for n, _ in M.layer_module(model, name).named_parameters(prefix=name)}


def test_only_the_named_layers_change_and_they_start_re_initialised(source):
    run, cache = source
    config = _transfer(run.key)
    moved = train(config, cache, data=TARGET)
    before, after, start = run.model.state_dict(), moved.model.state_dict(), moved.snapshots[0]
    trainable = _trainable(moved.model)
    assert trainable == {"decoder.2.0.weight", "decoder.2.0.bias", "output.0.weight", "output.0.bias"}
    for name, value in before.items():
        if name in trainable:
            assert not torch.equal(start[name], value)  # re-initialised ...
            assert not torch.equal(after[name], start[name])  # ... then trained
        else:
            assert torch.equal(after[name], value), name  # frozen: exactly the source's weights
    fine_tuned = train(_transfer(run.key, reset_layers=False), cache, data=TARGET)
    assert all(torch.equal(fine_tuned.snapshots[0][n], before[n]) for n in before)  # starts from the source


def test_a_transfer_run_resumes_after_an_interruption_like_an_uninterrupted_run(source, tmp_path, identical_runs):
    run, cache = source
    config = _transfer(run.key)

    def stop(step, logs):
        if step == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, cache, data=TARGET, callbacks=[stop])
    assert load_run(config, cache, data=TARGET) is None
    seen = []
    resumed = train(config, cache, data=TARGET, callbacks=[lambda step, logs: seen.append(step)])
    assert seen == list(range(9, 17))
    whole = train(config, cache=False, data=TARGET, init=run)
    identical_runs(whole, resumed)


def test_transfer_runs_from_several_sources_stack(source):
    run, cache = source
    other = train(dataclasses.replace(SOURCE, seed=5), cache)
    configs = [_transfer(r.key, seed=s) for r, s in ((run, 0), (other, 1), (run, 2))]
    solo = [train(c, cache=False, data=TARGET, init=r) for c, r in zip(configs, (run, other, run))]
    stacked = train_group(configs, cache=False, data=[TARGET] * 3, init=[run, other, run])
    for a, b in zip(solo, stacked):
        for name, value in a.model.state_dict().items():
            torch.testing.assert_close(b.model.state_dict()[name], value, rtol=1e-4, atol=2e-5)


def test_bad_transfer_settings_are_named(source):
    run, cache = source
    with pytest.raises(ValueError, match="were not given and are not in the cache"):
        train(_transfer("0" * 20), cache, data=TARGET)
    with pytest.raises(ValueError, match="'decoder.9' is not a trainable layer"):
        train(_transfer(run.key, train_layers=("decoder.9",)), cache, data=TARGET)
    with pytest.raises(ValueError, match="nothing is left to train"):
        train(_transfer(run.key, reset_layers=False, legacy_freeze_when_not_reset=True), cache, data=TARGET)
    with pytest.raises(ValueError, match="train_layers must be a non-empty tuple"):
        _transfer(run.key, train_layers="output")
    with pytest.raises(ValueError, match="reset_layers and legacy_freeze_when_not_reset need train_layers"):
        dataclasses.replace(SOURCE, reset_layers=True)
    with pytest.raises(ValueError, match="init: starting weights were given for a run without init_from"):
        train(SOURCE, cache=False, init=run)
    with pytest.raises(ValueError, match="key must be an artifact key"):
        cache.load_key("train", "../x")


def test_transfers_of_several_sources_stack_and_a_repeated_job_trains_once(source, monkeypatch):
    from replab import transfer as T
    from replab.train import groups as G

    run, _ = source
    other = train(dataclasses.replace(SOURCE, seed=5), cache=False)
    target = T.ImageSet(TARGET, None, (), {"dataset": "target"})
    jobs = [T.TransferJob(run, target, LAYERS, 12), T.TransferJob(other, target, LAYERS, 12),
            T.TransferJob(run, target, LAYERS, 12), T.TransferJob(run, target, (), 12)]
    solo = [T.transfer(j.source, j.target, j.layers, j.steps, cache=False) for j in jobs]
    shapes = []
    real_train_group = G.train_group
    monkeypatch.setattr(G, "default_group_size", lambda configs: 32)  # stack on the CPU too
    monkeypatch.setattr(G, "train_group",
                        lambda configs, *a, **kw: shapes.append(len(configs)) or real_train_group(configs, *a, **kw))
    moved = T.transfers(jobs, cache=False)
    assert shapes == [2]  # the two sources in one stacked group; the repeat and the untrained job not trained
    assert moved[2] is moved[0]
    for a, b in zip(solo, moved):
        for name, value in a.state_dict().items():
            torch.testing.assert_close(b.state_dict()[name], value, rtol=1e-4, atol=2e-5)
    trained = [n for n in moved[0].state_dict() if n.startswith("output")]
    assert trained and not torch.equal(moved[0].state_dict()[trained[0]], moved[1].state_dict()[trained[0]])
