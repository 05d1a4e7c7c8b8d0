"""The training engine: overfitting, resumption, seeding, caching, snapshots and input checks."""
import dataclasses
import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch

from replab import models as M
from replab import objectives as O
from replab.cache import ArtifactCache
from replab.noise import HashNoise
from replab.train import TrainConfig, load_run, train
from replab.train.data import augment
from replab.train.loop import _Autocast

TINY = M.MLPConfig(latent_dim=4, hidden=(32,), input_shape=(1, 6, 6))


def _images(n=32, seed=0, shape=(1, 6, 6)):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((n, *shape), generator=g) < 0.4).to(torch.uint8) * 255


def _config(**kw):
    base = dict(model=TINY, objective="beta_vae", dataset="toy", batch_size=8, steps=12, lr=3e-3,
                checkpoint_every=4, snapshot_steps=(0, 6, 12))
    base.update(kw)
    return TrainConfig(**base)


def test_a_tiny_model_overfits_one_batch():
    x = _images(16, seed=1)
    cfg = _config(batch_size=16, steps=200, lr=2e-2, objective_params={"beta": 0.05}, snapshot_steps=())
    run = train(cfg, cache=False, data=x)
    probs = run.model.reconstruct(x.float() / 255)
    assert run.model.training is False
    assert ((probs > 0.5) == (x > 0)).float().mean() > 0.97
    rec = run.metrics["reconstruction"]
    assert rec.iloc[-1] < 0.1 * rec.iloc[0]


def test_a_classifier_memorises_random_labels():
    x = _images(32, seed=2, shape=(3, 16, 16))
    y = torch.arange(32) % 4
    cfg = _config(model=M.VGGConfig(layout=((8, 1), (16, 2), (16, 2)), n_classes=4, image_size=16),
                  objective="cross_entropy", batch_size=32, steps=150, lr=0.05, optimizer="sgd",
                  random_labels=True, label_seed=3, snapshot_steps=())
    run = train(cfg, cache=False, data=(x, y))
    assert run.metrics["accuracy"].iloc[-1] >= 0.9  # memorised (chance: 0.25); exact values depend on the CPU
    with torch.no_grad():
        pred = run.model(x.float() / 255).argmax(-1)
    permuted = y[torch.randperm(32, generator=torch.Generator().manual_seed(3))]
    assert (pred == permuted).float().mean() >= 0.9 and (pred == y).float().mean() < 0.6  # the permuted labels
    assert sorted(permuted.tolist()) == sorted(y.tolist())


def _attribute_images(n=48, seed=4):
    """Images whose 3 binary attributes are independent and visible: attribute j lights the j-th third of the
    image; a fourth attribute is noise the images do not show."""
    g = torch.Generator().manual_seed(seed)
    attributes = (torch.rand(n, 4, generator=g) < 0.5).long()
    x = torch.zeros(n, 1, 6, 6, dtype=torch.uint8)
    for j in range(3):
        x[:, 0, 2 * j:2 * j + 2] = (attributes[:, j] * 255).to(torch.uint8)[:, None, None]
    return x, attributes


def test_a_multi_label_classifier_learns_every_visible_attribute():
    from replab.data import ImageDataset

    x, attributes = _attribute_images()
    data = ImageDataset(x, attributes=attributes, attribute_names=("top", "middle", "bottom", "unseen"))
    cfg = _config(model=M.VGGConfig(layout=((8, 1), (8, 2)), n_classes=4, image_size=6, channels=1),
                  objective="binary_cross_entropy", batch_size=48, steps=150, lr=0.1, optimizer="sgd",
                  snapshot_steps=())
    run = train(cfg, cache=False, data=data)
    with torch.no_grad():
        present = run.model(x.float() / 255) > 0
    assert (present[:, :3] == attributes[:, :3].bool()).all()  # every visible attribute, on every image
    assert 0.85 < run.metrics["accuracy"].iloc[-1] < 1.0  # the logged mean: the unseen one is memorised at best
    # the logged loss is the binary cross-entropy of the batch, averaged over images and attributes
    with torch.no_grad():
        p = torch.sigmoid(run.model(x.float() / 255)).double()
    bce = -(attributes * p.log() + (1 - attributes) * (1 - p).log()).mean()
    assert 0 < bce < run.metrics["loss"].iloc[0]
    # random labels permute the attribute rows once, with label_seed
    permuted = attributes[torch.randperm(48, generator=torch.Generator().manual_seed(5))]
    from replab.train import classifier_targets
    torch.testing.assert_close(classifier_targets(dataclasses.replace(cfg, random_labels=True, label_seed=5),
                                                  attributes, 48), permuted.float())


def test_a_multi_label_classifier_checks_its_targets():
    from replab.data import ImageDataset

    x, attributes = _attribute_images(16)
    cfg = _config(model=M.VGGConfig(layout=((4, 2),), n_classes=3, image_size=6, channels=1),
                  objective="binary_cross_entropy", steps=2, snapshot_steps=())
    with pytest.raises(ValueError, match=r"attributes: expected shape \(n, 3\) for n_classes=3"):
        train(cfg, cache=False, data=ImageDataset(x, attributes=attributes, attribute_names="abcd"))
    with pytest.raises(ValueError, match="has no binary attributes to train a multi-label classifier"):
        train(cfg, cache=False, data=ImageDataset(x, labels=attributes[:, 0]))
    with pytest.raises(ValueError, match="binary_cross_entropy needs 0/1 targets"):
        train(cfg, cache=False, data=(x, attributes[:, :3] * 2))


RESUMABLE = {
    "mmd_vae": dict(objective="mmd_vae", objective_params={"beta": 2.0}),
    # dropout draws from the global RNG and augmentation from the step's generator: both must resume exactly
    "classifier": dict(model=M.VGGConfig(layout=((4, 1), (4, 2)), n_classes=3, image_size=6, channels=1,
                                         dropout=0.3), objective="cross_entropy", optimizer="sgd",
                       augment=True, crop_padding=1),
}


@pytest.mark.parametrize("which", list(RESUMABLE))
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, which, identical_runs):
    x = (_images(), torch.arange(32) % 3)
    cfg = _config(**RESUMABLE[which])
    whole = train(cfg, ArtifactCache(tmp_path / "a"), data=x)

    class Killed(Exception):
        pass

    def kill_at_7(step, logs):
        if step == 7:
            raise Killed

    cache_b = ArtifactCache(tmp_path / "b")
    with pytest.raises(Killed):
        train(cfg, cache_b, data=x, callbacks=[kill_at_7])
    assert load_run(cfg, cache_b, data=x) is None
    assert list((tmp_path / "b" / "_checkpoints").rglob("*.pt"))  # the step-4 checkpoint survived
    seen = []
    resumed = train(cfg, cache_b, data=x, callbacks=[lambda step, logs: seen.append(step)])
    assert seen == list(range(5, 13))  # it restarted after the step-4 checkpoint, not from scratch
    assert sorted(resumed.snapshots) == [0, 6, 12]
    identical_runs(whole, resumed, steps=(0, 6))
    assert not list((tmp_path / "b" / "_checkpoints").rglob("*.pt"))


# The run a child process trains until it kills itself; the parent builds the same configuration from this code.
KILLED_RUN = """
from replab import models as M
from replab.train import TrainConfig
cfg = TrainConfig(M.MLPConfig(latent_dim=3, hidden=(16,), input_shape=(1, 6, 6)), objective="beta_tc_vae",
                  objective_params={"beta": 3.0}, dataset="synthetic", n=40, batch_size=8, steps=12, lr=3e-3,
                  checkpoint_every=4, snapshot_steps=(0, 6, 12))
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_process_resumes_from_its_last_checkpoint(tmp_path, identical_runs):
    # SIGKILL: no exception handler, no finally block, no flush runs in the dying process
    child = KILLED_RUN + textwrap.dedent(f"""
        import os, signal
        import torch
        from replab.cache import ArtifactCache
        from replab.train import train
        torch.set_num_threads(1)

        def kill(step, logs):
            if step == 7:
                os.kill(os.getpid(), signal.SIGKILL)

        train(cfg, ArtifactCache({str(tmp_path / "killed")!r}), callbacks=[kill])
        """)
    env = {**os.environ, "REPLAB_QUIET": "1"}
    proc = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    namespace = {}
    exec(KILLED_RUN, namespace)
    cfg = namespace["cfg"]
    killed = ArtifactCache(tmp_path / "killed")
    assert load_run(cfg, killed) is None
    assert len(list((tmp_path / "killed" / "_checkpoints").rglob("last.pt"))) == 1
    seen = []
    resumed = train(cfg, killed, callbacks=[lambda step, logs: seen.append(step)])
    assert seen == list(range(5, 13))  # steps 1-4 came from the checkpoint, 5-7 were lost and redone
    whole = train(cfg, cache=False)
    identical_runs(whole, resumed, steps=(0, 6, 12))
    assert pd.read_csv(resumed.metrics_path)["step"].tolist() == list(range(1, 13))


def test_mixed_precision_runs_the_model_in_bfloat16_and_the_objective_in_float32():
    torch.manual_seed(0)
    model = M.build(TINY)
    x = _images(8).float() / 255
    amp = _Autocast(model, "cpu")  # the engine uses it on CUDA; CPU autocast has the same semantics
    full = model(x, generator=torch.Generator().manual_seed(0))
    half = amp(x, generator=torch.Generator().manual_seed(0))
    assert type(half) is type(full) and all(t.dtype == torch.float32 for t in half)
    assert not torch.equal(half.mu, full.mu)  # the layers really ran in bfloat16 ...
    torch.testing.assert_close(half.mu, full.mu, atol=0.05, rtol=0.05)  # ... to bfloat16 accuracy
    assert amp.latent_dim == model.latent_dim and amp.encode(x)[0].dtype == torch.float32
    for name, params in [("mmd_vae", {"beta": 2.0}), ("beta_tc_vae", {"beta": 4.0}), ("dip_vae_ii", {}),
                         ("renyi", {"alpha": 0.5, "n_samples": 3})]:
        fn = O.objective(name)
        got = fn(amp, x, 0, torch.Generator().manual_seed(1), **params)
        want = fn(model, x, 0, torch.Generator().manual_seed(1), **params)
        assert all(v.dtype == torch.float32 for v in got.values()), name
        torch.testing.assert_close(got["loss"], want["loss"], rtol=0.05, atol=0.5)
        model.zero_grad()
        got["loss"].backward()
        assert all(p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
                   for p in model.parameters()), name


def _compile_works_here() -> str | None:
    """None if torch.compile builds and runs a two-operation function on CUDA, else why not: the compiler
    toolchain Inductor needs (a C compiler, Triton) is the machine's, not the library's."""
    try:
        f = torch.compile(lambda t: torch.relu(t) * 2)
        f(torch.ones(4, device="cuda"))
    except Exception as exc:  # noqa: BLE001  (any failure of the toolchain)
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mixed_precision_and_compile_on_a_gpu():
    broken = _compile_works_here()
    if broken is not None:
        pytest.skip(f"torch.compile does not work on this machine, even for a trivial function ({broken})")
    x = _images(64)
    base = _config(batch_size=16, steps=30, device="cuda", snapshot_steps=(), objective="mmd_vae")
    plain = train(base, cache=False, data=x)
    fast = train(dataclasses.replace(base, amp=True, compile=True), cache=False, data=x)
    assert fast.metrics.notna().all().all()
    assert all(torch.isfinite(v).all() for v in fast.model.state_dict().values())
    # same data and noise, bfloat16 layers: the losses follow the float32 run closely
    rel = (fast.metrics["loss"] - plain.metrics["loss"]).abs() / plain.metrics["loss"].abs()
    assert rel.max() < 0.05


def test_same_seed_same_numbers_and_the_cache_is_reused(tmp_path):
    x = _images()
    cfg = _config(objective="beta_tc_vae", objective_params={"beta": 4.0}, snapshot_steps=())
    a = train(cfg, cache=False, data=x)
    b = train(cfg, cache=False, data=x)
    c = train(dataclasses.replace(cfg, seed=1), cache=False, data=x)
    assert torch.equal(a.model.mean.weight, b.model.mean.weight)
    assert not torch.equal(a.model.mean.weight, c.model.mean.weight)
    cache = ArtifactCache(tmp_path)
    first = train(cfg, cache, data=x)
    calls = []
    again = train(cfg, cache, data=x, callbacks=[lambda s, logs: calls.append(s)])
    assert calls == [] and cache.hits == 1 and again.key == first.key
    assert torch.equal(first.model.mean.weight, again.model.mean.weight)
    assert torch.equal(first.model.mean.weight, a.model.mean.weight)
    # other data is another artifact
    assert load_run(cfg, cache, data=_images(seed=5)) is None
    logged = pd.read_csv(first.metrics_path)
    assert list(logged.columns) == ["step", "loss", "reconstruction", "kl", "tc"]
    assert logged["step"].tolist() == list(range(1, 13))
    pd.testing.assert_frame_equal(logged, first.metrics, check_dtype=False)
    first.metrics_path.unlink()  # a lost log is rewritten from the artifact
    assert pd.read_csv(load_run(cfg, cache, data=x).metrics_path).equals(logged)


def test_snapshots_are_the_weights_at_those_steps():
    x = _images()
    cfg = _config(objective="annealed_vae", objective_params={"c_max": 5.0, "iteration_threshold": 10})
    run = train(cfg, cache=False, data=x)
    assert sorted(run.snapshots) == [0, 6, 12]
    fresh = M.build(TINY)  # the initialisation is the one seeded by the run's seed
    torch.manual_seed(cfg.seed)
    fresh = M.build(TINY)
    assert torch.equal(run.snapshots[0]["mean.weight"], fresh.mean.weight)
    assert torch.equal(run.snapshots[12]["mean.weight"], run.model.mean.weight)
    six = run.model_at(6)
    assert not six.training and not torch.equal(six.mean.weight, run.model.mean.weight)
    shorter = train(dataclasses.replace(cfg, steps=6, snapshot_steps=()), cache=False, data=x)
    assert torch.equal(shorter.model.mean.weight, six.mean.weight)
    assert run.metrics["capacity"].tolist()[:3] == [0.0, 0.5, 1.0]


def test_augmentation_crops_and_flips():
    x = torch.rand(16, 2, 5, 5, generator=torch.Generator().manual_seed(0))
    same = augment(x, 0, True, HashNoise(1, 0))
    assert not torch.equal(same, x)  # some images were flipped ...
    for i in range(16):
        assert torch.equal(same[i], x[i]) or torch.equal(same[i], x[i].flip(-1))
    out = augment(x, 2, True, HashNoise(2, 0))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(16):
        windows = [padded[i, :, r:r + 5, c:c + 5] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows)
    assert torch.equal(augment(x, 2, True, HashNoise(2, 0)), out)  # a pure function of (seed, step)


def test_augmentation_without_flip_only_crops():
    # digits: a flip would change the class, so they are cropped only
    x = torch.rand(32, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(augment(x, 0, False, HashNoise(3, 0)), x)
    out = augment(x, 1, False, HashNoise(3, 1))
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    for i in range(32):
        assert any(torch.equal(out[i], padded[i, :, r:r + 5, c:c + 5]) for r in range(3) for c in range(3))


@pytest.mark.parametrize("change, message", [
    (dict(objective="factor_vae"), "objective must be one of"),
    (dict(objective_params={"gamma": 1.0}), "objective_params: unknown parameter"),
    (dict(objective="cross_entropy"), "objective must be one of"),
    (dict(model=M.VGGConfig(), objective="beta_vae"),
     r"objective must be one of \('cross_entropy', 'binary_cross_entropy'\) for a classifier"),
    (dict(model=M.VGGConfig(), objective="binary_cross_entropy", label_column=0), "label_column applies to"),
    (dict(model=M.VGGConfig(), objective="binary_cross_entropy", objective_params={"pos_weight": 2.0}),
     "objective_params must be empty for binary_cross_entropy"),
    (dict(snapshot_steps=(0, 13)), r"snapshot_steps must lie in \[0, steps=12\]"),
    (dict(steps=0), "steps must be an integer >= 1, got 0"),
    # nonsense hyper-parameters: each named, with its allowed range, before anything trains
    (dict(objective_params={"beta": -1.0}), "beta must be a finite number >= 0, got -1.0"),
    (dict(objective_params={"beta": float("nan")}), "beta must be a finite number >= 0, got nan"),
    (dict(objective_params={"beta": "4"}), "beta must be a finite number >= 0, got '4'"),
    (dict(objective="dip_vae_ii", objective_params={"lambda_od": -2.0}), "lambda_od must be a finite number >= 0"),
    (dict(objective="mmd_vae", objective_params={"prior_variance": 0.0}), "prior_variance must be a finite "
                                                                            "number > 0"),
    (dict(objective="renyi", objective_params={"n_samples": 2.5}), "n_samples must be an integer >= 1"),
    (dict(grad_clip=0.0), "grad_clip must be a finite number > 0 or None, got 0.0"),
    (dict(grad_clip=-1.0), "grad_clip must be a finite number > 0 or None"),
    (dict(lr=float("inf")), "lr must be a finite number > 0, got inf"),
    (dict(lr="1e-3"), "lr must be a finite number > 0, got '1e-3'"),
    (dict(n=True), "n must be an integer >= 1 or None, got True"),
    (dict(batch_size=8.0), "batch_size must be an integer >= 1, got 8.0"),
    (dict(seed=-1), "seed must be an integer >= 0"),
    (dict(betas=(0.9, 1.5)), r"betas\[1\] must be a finite number in \[0, 1\)"),
    (dict(momentum=1.0), r"momentum must be a finite number in \[0, 1\)"),
    (dict(weight_decay=-1e-4), "weight_decay must be a finite number >= 0"),
    (dict(log_every=0), "log_every must be an integer >= 1"),
    (dict(optimizer="lbfgs"), "optimizer must be one of"),
    (dict(augment=True), "apply to classifiers only"),
    (dict(model="mlp"), "model must be a model configuration"),
])
def test_bad_configuration_raises(change, message):
    with pytest.raises(ValueError, match=message):
        _config(**change)


def test_bad_data_raises():
    with pytest.raises(ValueError, match=r"images of shape \(1, 5, 5\) do not fit the model's input"):
        train(_config(), cache=False, data=_images(shape=(1, 5, 5)))
    with pytest.raises(ValueError, match="batch_size=8 is larger than the dataset"):
        train(_config(), cache=False, data=_images(n=4))
    with pytest.raises(ValueError, match="n=40 is larger than the dataset"):
        train(_config(n=40), cache=False, data=_images())


def _render_bits(ids):
    """Image i shows the 16 low bits of i: a deterministic lazily rendered set."""
    bits = (ids[:, None] >> torch.arange(16)) & 1
    return (bits * 255).to(torch.uint8).reshape(-1, 1, 4, 4)


def test_lazy_and_labelled_datasets(tmp_path):
    from replab.data import ImageDataset, LazyImageDataset
    lazy = LazyImageDataset(_render_bits, torch.arange(40_000), (1, 4, 4), name="bits")
    assert not isinstance(lazy.images, torch.Tensor)  # too large to materialise: indexed batch by batch
    cfg = _config(model=M.MLPConfig(latent_dim=2, hidden=(8,), input_shape=(1, 4, 4)), steps=5, snapshot_steps=())
    run = train(cfg, ArtifactCache(tmp_path), data=lazy)
    assert len(run.metrics) == 5 and load_run(cfg, ArtifactCache(tmp_path), data=lazy) is not None
    images = _render_bits(torch.arange(64))
    factors = torch.stack([torch.arange(64) % 3, torch.arange(64) % 5], 1)
    labelled = ImageDataset(images.repeat(1, 3, 1, 1), labels=torch.arange(64) % 2, factor_classes=factors,
                            factors=factors.float(), factor_names=("a", "b"))
    clf = dict(model=M.VGGConfig(layout=((4, 2),), n_classes=5, image_size=4), objective="cross_entropy",
               steps=2, snapshot_steps=())
    train(_config(**clf, label_column=1), cache=False, data=labelled)  # factor column 1 has 5 classes
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\) for n_classes=3"):
        train(_config(**{**clf, "model": M.VGGConfig(layout=((4, 2),), n_classes=3, image_size=4)},
                      label_column=1), cache=False, data=labelled)


VAES = {
    "conv64": M.Conv64Config(image_size=32, widths=(4, 4, 8, 8), hidden=16, latent_dim=3),
    "fc": M.FCConfig(input_shape=(1, 6, 6), encoder_widths=(8,), decoder_widths=(8,), latent_dim=3),
    "wae": M.WAECelebAConfig(channels=1, image_size=16, widths=(4, 4, 4, 4), latent_dim=3),
}
OBJECTIVE_PARAMS = {"beta_vae": {"beta": 4.0}, "beta_tc_vae": {"beta": 4.0, "drop_constants": True},
                    "annealed_vae": {"c_max": 5.0}, "dip_vae_ii": {"lambda_od": 5.0},
                    "mmd_vae": {"beta": 1.0, "unbiased": True}, "renyi": {"alpha": 0.0, "n_samples": 3}}


@pytest.mark.parametrize("objective", list(OBJECTIVE_PARAMS))
@pytest.mark.parametrize("which", list(VAES))
def test_every_objective_trains_every_vae(which, objective):
    cfg = VAES[which]
    shape = M.build(cfg).input_shape
    run = train(_config(model=cfg, objective=objective, objective_params=OBJECTIVE_PARAMS[objective], steps=2,
                        snapshot_steps=()), cache=False, data=_images(16, shape=shape))
    assert len(run.metrics) == 2 and run.metrics.notna().all().all()
    assert all(torch.isfinite(v).all() for v in run.model.state_dict().values())
