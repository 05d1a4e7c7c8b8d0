"""Stacked training: a group of K runs trained as one model gives each member the numbers of its solo run; a
group resumes after an interruption like a single run; the grid runner ships groups."""
import dataclasses

import pandas as pd
import pytest
import torch

from replab import models as M
from replab.objectives import ONE_SAMPLE_TERMS, dip_vae_ii
from replab.cache import ArtifactCache
from replab.grid import groups, load_grid, run_grid
from replab.train import TrainConfig, group_signature, load_run, train, train_group

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

MLP = M.MLPConfig(latent_dim=3, hidden=(16,), input_shape=(1, 6, 6))
CONV = M.FCConfig(latent_dim=4, input_shape=(1, 8, 8), encoder_widths=(12,), decoder_widths=(12,))
VGG = M.VGGConfig(layout=((4, 1), (8, 2)), channels=1, image_size=12, dropout=0.25)


def _members(base: TrainConfig, **varying) -> list[TrainConfig]:
    """Four members that differ in seed and in each ``varying`` field (lists of four values)."""
    out = []
    for i in range(4):
        fields = {name: values[i] for name, values in varying.items()}
        out.append(dataclasses.replace(base, seed=10 + i, **fields))
    return out


def _assert_same_run(solo, stacked, atol=2e-5):
    assert sorted(solo.snapshots) == sorted(stacked.snapshots)
    for name, value in solo.model.state_dict().items():
        torch.testing.assert_close(stacked.model.state_dict()[name].cpu(), value.cpu(), rtol=1e-4, atol=atol,
                                   msg=lambda m: f"{name}: {m}")
    for step, state in solo.snapshots.items():
        for name, value in state.items():
            torch.testing.assert_close(stacked.snapshots[step][name], value, rtol=1e-4, atol=atol)
    assert list(solo.metrics.columns) == list(stacked.metrics.columns)
    pd.testing.assert_frame_equal(stacked.metrics, solo.metrics, check_exact=False, rtol=1e-4, atol=1e-4)


CASES = {
    # β differs per member (a stackable hyper-parameter), and so do the data subsets and snapshot steps
    "mlp-beta-tc": (TrainConfig(MLP, objective="beta_tc_vae", objective_params={"beta": 3.0}, dataset="synthetic",
                                n=40, batch_size=8, steps=30, lr=3e-3, snapshot_steps=(0, 10)),
                    dict(objective_params=[{"beta": b} for b in (0.5, 1.0, 4.0, 8.0)], subset_seed=[0, 1, 0, 2],
                         snapshot_steps=[(0, 10), (5,), (), (30,)])),
    "fc-mmd": (TrainConfig(CONV, objective="mmd_vae", objective_params={"beta": 2.0}, dataset="synthetic", n=48,
                           batch_size=12, steps=30, lr=2e-3, grad_clip=5.0),
               dict(objective_params=[{"beta": b} for b in (1.0, 2.0, 10.0, 100.0)])),
    "fc-renyi": (TrainConfig(CONV, objective="renyi", objective_params={"alpha": 0.5, "n_samples": 3},
                             dataset="synthetic", n=48, batch_size=12, steps=25, lr=2e-3),
                 dict(objective_params=[{"alpha": a, "n_samples": 3} for a in (0.0, 0.5, 1.0, 2.0)])),
    "fc-annealed": (TrainConfig(CONV, objective="annealed_vae", objective_params={"gamma": 10.0, "c_max": 5.0,
                                                                                  "iteration_threshold": 20},
                                dataset="synthetic", n=48, batch_size=12, steps=25, lr=2e-3),
                    dict(objective_params=[{"gamma": g, "c_max": 5.0, "iteration_threshold": 20}
                                           for g in (1.0, 10.0, 30.0, 100.0)])),
    # dropout, batch norm, augmentation, random labels for half the members, gradient clipping, SGD
    "vgg-dropout": (TrainConfig(VGG, objective="cross_entropy", dataset="synthetic", n=64, batch_size=16,
                                steps=30, lr=0.02, optimizer="sgd", augment=True, crop_padding=2, grad_clip=2.0,
                                weight_decay=1e-4),
                    dict(random_labels=[False, True, False, True], label_seed=[0, 0, 3, 3])),
}


@pytest.fixture
def full_precision_matmul():
    """TF32 off for the duration of a test: on CUDA, convolutions and products default to 10-bit mantissas, and a
    stacked (grouped) convolution rounds differently from a plain one, by far more than float32 does (measured on
    an H200: 4e-3 after 30 steps with TF32, 9e-8 without)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_stacked_group_gives_each_member_its_solo_run(case, device, full_precision_matmul):
    base, varying = CASES[case]
    configs = _members(dataclasses.replace(base, device=device), **varying)
    assert len({group_signature(c) for c in configs}) == 1
    solo = [train(c, cache=False) for c in configs]
    stacked = train_group(configs, cache=False)
    for one, member in zip(solo, stacked):
        _assert_same_run(one, member)
    # the members really differ from each other (a group that trained one model four times would pass above)
    first = solo[0].model.state_dict()
    assert all(not torch.equal(first[n], s.model.state_dict()[n]) for s in solo[1:] for n in list(first)[:1])


def _mixed_objectives(**kw) -> list[TrainConfig]:
    """Five members with four objectives of one posterior sample, two of them β-TC-VAEs with different (fixed)
    dataset sizes: five slots' worth of terms, one forward pass."""
    base = TrainConfig(CONV, objective="beta_vae", dataset="synthetic", n=48, batch_size=12, steps=25, lr=2e-3,
                       snapshot_steps=(0, 10), **kw)
    objectives = [("beta_vae", {"beta": 4.0}), ("beta_tc_vae", {"beta": 6.0, "dataset_size": 48}),
                  ("annealed_vae", {"gamma": 10.0, "c_max": 5.0, "iteration_threshold": 20}),
                  ("dip_vae_ii", {"lambda_od": 2.0}), ("beta_tc_vae", {"beta": 2.0, "dataset_size": 4800})]
    return [dataclasses.replace(base, seed=20 + i, objective=o, objective_params=p)
            for i, (o, p) in enumerate(objectives)]


@pytest.mark.parametrize("device", DEVICES)
def test_members_with_different_objectives_of_one_sample_stack_and_keep_their_solo_runs(device,
                                                                                          full_precision_matmul):
    configs = _mixed_objectives(device=device, grad_clip=50.0)
    assert len({group_signature(c) for c in configs}) == 1
    assert groups(configs) == [[0, 1, 2, 3, 4]]
    solo = [train(c, cache=False) for c in configs]
    seen = []
    stacked = train_group(configs, cache=False, callbacks=[lambda step, logs: seen.append(logs["loss"].shape)])
    assert set(seen) == {(5,)}  # one stacked model
    for one, member in zip(solo, stacked):
        _assert_same_run(one, member)  # the columns too: each member logs only its own objective's terms
    assert "tc" in stacked[1].metrics and "tc" not in stacked[0].metrics
    assert "capacity" in stacked[2].metrics and "dip_penalty" in stacked[3].metrics
    # (the two β-TC-VAEs are two slots: with member 1's dataset size, member 4's logged TC would be off by
    # (d − 1)·log 100 ≈ 13.8 nats, which the comparison above would catch)


def _terms_not_finite_on_constant_codes(log_px, out, step, lambda_od=1.0, lambda_d=None):
    """DIP-VAE-II's terms plus log Σ|μ_i − μ_1|: minus infinity, with an infinite gradient, for a member whose
    codes are all equal (an encoder fed constant images), finite otherwise."""
    terms = dip_vae_ii(log_px, out.mu, out.logvar, lambda_od, lambda_d)
    spread = torch.log((out.mu - out.mu[:1]).abs().sum())
    return {**terms, "loss": terms["loss"] + 1e-3 * spread, "spread": spread}


def test_a_slot_that_is_not_finite_for_a_member_outside_it_leaves_that_member_its_solo_run(monkeypatch):
    """Every member computes every slot's terms. A slot whose terms (or their gradient) are infinite for a member
    outside it must give that member neither value nor gradient: not 0·∞ = NaN through the selection."""
    monkeypatch.setitem(ONE_SAMPLE_TERMS, "dip_vae_ii", _terms_not_finite_on_constant_codes)
    base = _mixed_objectives()[0]
    constant = dataclasses.replace(base, dataset="in-memory", n=None)
    other = dataclasses.replace(constant, seed=21, objective="dip_vae_ii", objective_params={"lambda_od": 2.0})
    zeros = torch.zeros(48, 1, 8, 8, dtype=torch.uint8)
    noise = torch.randint(0, 256, (48, 1, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    stacked = train_group([constant, other], cache=False, data=[zeros, noise])
    _assert_same_run(train(constant, cache=False, data=zeros), stacked[0])
    assert all(torch.isfinite(v).all() for v in stacked[1].model.state_dict().values())
    assert "spread" in stacked[1].metrics and "spread" not in stacked[0].metrics


def test_objectives_that_draw_more_noise_or_samples_still_stack_only_with_themselves():
    one_sample = _mixed_objectives()[0]
    mmd = dataclasses.replace(one_sample, seed=1, objective="mmd_vae", objective_params={"beta": 2.0})
    renyi = dataclasses.replace(one_sample, seed=2, objective="renyi", objective_params={"alpha": 0.5})
    assert len({group_signature(c) for c in (one_sample, mmd, renyi)}) == 3
    with pytest.raises(ValueError, match="differ in"):
        train_group([one_sample, mmd], cache=False)
    # two MMD-VAEs whose fixed prior variances differ cannot stack either
    with pytest.raises(ValueError, match="differ in"):
        train_group([mmd, dataclasses.replace(mmd, seed=3, objective_params={"beta": 2.0, "prior_variance": 1.0})],
                    cache=False)


def _interrupt_at_step_10(configs, cache):
    """Train the group and stop it by KeyboardInterrupt after update 10 (its checkpoint of update 8 stays)."""
    def interrupt(step, logs):
        if step == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_group(configs, cache, callbacks=[interrupt])


def test_a_mixed_group_resumes_after_an_interruption_like_an_uninterrupted_run(tmp_path, identical_runs):
    configs = [dataclasses.replace(c, steps=16, checkpoint_every=4, snapshot_steps=(0, 6, 16))
               for c in _mixed_objectives()]
    cache = ArtifactCache(tmp_path / "a")
    _interrupt_at_step_10(configs, cache)
    resumed = train_group(configs, cache)
    whole = train_group(configs, cache=False)
    for a, b in zip(whole, resumed):
        identical_runs(a, b, steps=(0, 6, 16))
        assert list(a.metrics.columns) == list(b.metrics.columns)


def test_a_stacked_group_resumes_after_an_interruption_with_the_weights_of_an_uninterrupted_run(tmp_path, identical_runs):
    base, varying = CASES["vgg-dropout"]
    configs = _members(dataclasses.replace(base, steps=20, checkpoint_every=4, snapshot_steps=(0, 6, 20)),
                       **varying)
    cache = ArtifactCache(tmp_path / "a")
    _interrupt_at_step_10(configs, cache)
    assert all(load_run(c, cache) is None for c in configs)
    assert len(list((tmp_path / "a" / "_checkpoints").rglob("last.pt"))) == 1
    seen = []
    resumed = train_group(configs, cache, callbacks=[lambda step, logs: seen.append(step)])
    assert seen == list(range(9, 21))  # steps 1-8 came from the step-8 checkpoint
    whole = train_group(configs, cache=False)
    for a, b in zip(whole, resumed):
        identical_runs(a, b, steps=(0, 6, 20))
    assert not list((tmp_path / "a" / "_checkpoints").rglob("*.pt"))
    # each member is its own artifact, found by a solo request
    assert all(torch.equal(load_run(c, cache).model.state_dict()[n], r.model.state_dict()[n])
               for c, r in zip(configs, resumed) for n in list(r.model.state_dict())[:2])


def test_a_group_trains_only_the_members_not_in_the_cache(tmp_path):
    base, varying = CASES["mlp-beta-tc"]
    configs = _members(base, **varying)
    cache = ArtifactCache(tmp_path)
    first = train(configs[1], cache)
    seen = []
    runs = train_group(configs, cache, callbacks=[lambda step, logs: seen.append(tuple(logs["loss"].shape))])
    assert set(seen) == {(3,)}  # three members trained together, the cached one loaded
    assert torch.equal(runs[1].model.mean.weight, first.model.mean.weight)


def test_members_of_one_group_must_share_the_architecture_and_optimiser():
    base, _ = CASES["mlp-beta-tc"]
    with pytest.raises(ValueError, match=r"differ in \['lr'\]"):
        train_group([base, dataclasses.replace(base, seed=1, lr=1e-2)], cache=False)
    with pytest.raises(ValueError, match="differ in"):
        train_group([base, dataclasses.replace(base, seed=1, batch_size=base.batch_size * 2)], cache=False)
    with pytest.raises(ValueError, match="the same run appears twice"):
        train_group([base, base], cache=False)
    with pytest.raises(ValueError, match="no run to train"):
        train_group([], cache=False)


def test_groups_split_by_signature_and_size():
    base, _ = CASES["mlp-beta-tc"]
    other = dataclasses.replace(base, lr=1e-2)
    configs = [dataclasses.replace(c, seed=i) for i, c in enumerate([base, other, base, base, other, base])]
    assert groups(configs) == [[0, 2, 3, 5], [1, 4]]
    assert groups(configs, size=3) == [[0, 2, 3], [5], [1, 4]]
    assert groups(configs, size=1) == [[i] for i in (0, 2, 3, 5, 1, 4)]
    with pytest.raises(ValueError, match="size must be a positive integer"):
        groups(configs, size=0)


def test_members_stack_by_default_on_a_gpu_only(tmp_path):
    from replab.train.groups import GROUP_SIZE, default_group_size, train_many
    base, _ = CASES["mlp-beta-tc"]
    assert default_group_size([base]) == (GROUP_SIZE if torch.cuda.is_available() else 1)
    assert default_group_size([dataclasses.replace(base, device="cpu")]) == 1
    configs = [dataclasses.replace(base, seed=s) for s in range(3)]
    runs = train_many(configs, cache=False, group_size=3)
    solo = [train(c, cache=False) for c in configs]
    for a, b in zip(solo, runs):
        _assert_same_run(a, b)
    executor = _Recording()
    run_grid([dataclasses.replace(c, device="cpu") for c in configs], executor=executor,
             cache=ArtifactCache(tmp_path))
    assert executor.shipped == [1, 1, 1]


class _Recording:
    """An executor running each submission at once in this process, recording what was shipped."""

    def __init__(self):
        self.shipped = []

    def submit(self, fn, *args):
        self.shipped.append(len(args[0]))
        from concurrent.futures import Future
        future = Future()
        future.set_result(fn(*args))
        return future


def test_the_grid_runner_ships_groups_and_stores_each_member(tmp_path):
    base, _ = CASES["mlp-beta-tc"]
    configs = [dataclasses.replace(base, seed=s, objective_params={"beta": b}) for s in range(3) for b in (1., 4.)]
    configs.append(dataclasses.replace(base, lr=1e-2))
    cache = ArtifactCache(tmp_path)
    executor = _Recording()
    members = run_grid(configs, executor=executor, cache=cache, group_size=32)
    assert sorted(executor.shipped) == [1, 6]
    assert [m.status for m in members] == ["trained"] * 7
    runs = load_grid(configs, cache)
    solo = train(configs[3], cache=False)
    _assert_same_run(solo, runs[3])
    again = _Recording()
    assert [m.status for m in run_grid(configs, executor=again, cache=cache)] == ["cached"] * 7
    assert again.shipped == []


def test_batches_keep_shared_examples_once_and_give_each_member_its_own_order():
    from replab.train.data import Batches
    images = torch.arange(40, dtype=torch.uint8).reshape(40, 1, 1, 1)
    shared = Batches([images] * 3, None, 8, [0, 1, 2], torch.device("cpu"))
    assert shared.images is images  # one copy for every member
    alone = [Batches([images], None, 8, [s], torch.device("cpu")) for s in range(3)]
    for step in (0, 4, 5, 11):  # within an epoch and across epochs
        x, _ = shared(step)
        for m in range(3):
            assert torch.equal(x[m], alone[m](step)[0][0])
    assert not torch.equal(x[0], x[1])
    other = images.flip(0)
    mixed = Batches([images, other], [torch.arange(40), torch.arange(40) % 3], 8, [0, 0], torch.device("cpu"))
    x, y = mixed(2)
    assert torch.equal((x[1] * 255).round(), 39 - (x[0] * 255).round())  # same order, the other set's images
    assert torch.equal(y[1], y[0] % 3)  # each member's targets follow its own examples


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_gpu_run_moves_its_training_set_once():
    from replab.train.data import Batches
    images = torch.randint(0, 256, (64, 1, 4, 4), dtype=torch.uint8)
    batches = Batches([images] * 2, [torch.arange(64)] * 2, 8, [0, 1], torch.device("cuda"))
    assert batches.images.is_cuda and batches.targets.is_cuda and batches.offsets.is_cuda
    x, y = batches(3)
    assert x.is_cuda and y.is_cuda and batches._perm.is_cuda
