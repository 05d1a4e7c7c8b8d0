"""The learning-rate decay follows its closed form; evaluation with early stopping keeps the best-evaluated
weights, per member of a stacked group too; bad settings are refused."""
import dataclasses

import pytest
import torch

from replab import models as M
from replab.train import TrainConfig, train, train_group

VGG = M.VGGConfig(layout=((4, 1), (8, 2)), channels=1, image_size=12, dropout=0.25)
CLF = TrainConfig(VGG, objective="cross_entropy", dataset="in-memory", batch_size=16, steps=30, lr=0.05,
                  optimizer="sgd", device="cpu")


def _labelled(seed: int, n: int = 64):
    """Images whose class (0 or 1) is the brightness of their top half."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    images = torch.rand(n, 1, 12, 12, generator=g) * 0.4
    images[labels == 1, :, :6] += 0.5
    return images, labels


def test_the_learning_rate_of_update_t_is_lr_times_gamma_to_the_t_minus_1():
    config = dataclasses.replace(CLF, steps=40, lr=0.02, lr_decay=0.9)
    run = train(config, cache=False, data=_labelled(0))
    lr = run.metrics.set_index("step")["lr"]
    for t in (1, 2, 17, 40):
        assert lr[t] == pytest.approx(0.02 * 0.9 ** (t - 1), rel=1e-9)
    flat = train(dataclasses.replace(config, lr_decay=1.0, steps=2), cache=False, data=_labelled(0))
    assert "lr" not in flat.metrics  # a constant rate is not logged


def test_early_stopping_keeps_the_weights_of_the_best_evaluation_of_each_member():
    """The validation labels are the training labels flipped, so validation accuracy falls as training succeeds:
    the kept weights are those of the first, best evaluation, not the last update's; each member of a stacked
    group keeps what its solo run keeps."""
    steps = (5, 10, 15, 20, 25, 30)
    config = dataclasses.replace(CLF, eval_every=5, snapshot_steps=steps, lr=0.02)
    configs = [dataclasses.replace(config, seed=s) for s in (1, 2)]
    data = [_labelled(1), _labelled(2)]
    val = [(im, 1 - y) for im, y in (_labelled(11, 48), _labelled(12, 48))]
    solo = [train(c, cache=False, data=d, val_data=v) for c, d, v in zip(configs, data, val)]
    stacked = train_group(configs, cache=False, data=data, val_data=val)
    for run, member, (images, labels) in zip(solo, stacked, val):
        evals = run.metrics.dropna(subset=["eval"]).set_index("step")["eval"]
        assert list(evals.index) == list(steps)
        for step in steps:  # each evaluation is the accuracy of that step's weights, in eval mode
            model = run.model_at(step)
            with torch.no_grad():
                right = (model(images).argmax(1) == labels).float().mean()
            assert evals[step] == pytest.approx(float(right), abs=1e-6)
        best = max(steps, key=lambda s: (evals[s], -s))  # the first of the highest
        assert run.best_step == best < 30 and evals[30] < 0.3
        for name, value in run.snapshots[best].items():
            assert torch.equal(run.model.state_dict()[name], value)
        assert member.best_step == best
        torch.testing.assert_close(member.model.state_dict(), run.model.state_dict(), rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("change, message", [
    (dict(lr_decay=0.0), "lr_decay must be"),
    (dict(lr_decay=1.5), "lr_decay must be"),
    (dict(eval_every=0), "eval_every must be"),
])
def test_bad_decay_and_evaluation_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(CLF, **change)


def test_a_vae_has_no_evaluation():
    with pytest.raises(ValueError, match="eval_every applies to classifiers"):
        TrainConfig(M.MLPConfig(latent_dim=2), dataset="synthetic", eval_every=5)
