"""Checkpoints are trusted only when intact and theirs; a diverging run stops and stores nothing; artifact keys
change exactly when what defines the artifact changes."""
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from replab import models as M
from replab.cache import ArtifactCache, code_closure
from replab.train import TrainConfig, load_run, run_key, train

CFG = TrainConfig(M.MLPConfig(latent_dim=3, hidden=(16,), input_shape=(1, 6, 6)), objective="beta_vae",
                  objective_params={"beta": 2.0}, dataset="synthetic", n=40, batch_size=8, steps=12, lr=3e-3,
                  checkpoint_every=4, snapshot_steps=(0, 12))


def _interrupted(cache: ArtifactCache, at: int) -> Path:
    """Train CFG until update ``at``, then stop as a crash would; return the run's checkpoint folder."""
    def stop(step, logs):
        if step == at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(CFG, cache, callbacks=[stop])
    (folder,) = (cache.root / "_checkpoints").iterdir()
    return folder


def _resume(cache):
    seen = []
    run = train(CFG, cache, callbacks=[lambda step, logs: seen.append(step)])
    whole = train(CFG, cache=False)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, run.model.state_dict()[name]), name
    return seen


def test_the_previous_checkpoint_is_used_when_the_last_is_damaged(tmp_path, caplog):
    cache = ArtifactCache(tmp_path)
    folder = _interrupted(cache, 10)
    assert (folder / "last.pt").exists() and (folder / "prev.pt").exists()  # steps 8 and 4
    data = bytearray((folder / "last.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "last.pt").write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="replab.train"):
        seen = _resume(cache)
    assert seen == list(range(5, 13))  # resumed from the step-4 checkpoint
    assert "do not match their checksum" in caplog.text and "weights_only" not in caplog.text


@pytest.mark.parametrize("tamper, why", [
    (lambda meta: {**meta, "step": 999}, "lies outside the run"),
    (lambda meta: {**meta, "keys": ["somebody-else"]}, "holds other runs"),
    (lambda meta: [1], "not a JSON object"),
    (None, "missing or unreadable"),
])
def test_a_foreign_or_impossible_checkpoint_is_discarded(tmp_path, caplog, tamper, why):
    cache = ArtifactCache(tmp_path)
    folder = _interrupted(cache, 6)  # one checkpoint, at step 4
    assert not (folder / "prev.pt").exists()
    sidecar = folder / "last.json"
    if tamper is None:
        sidecar.unlink()
    else:
        sidecar.write_text(json.dumps(tamper(json.loads(sidecar.read_text()))))
    with caplog.at_level(logging.WARNING, logger="replab.train"):
        seen = _resume(cache)
    assert seen == list(range(1, 13))  # from scratch, and still the right weights
    assert why in caplog.text


def test_a_truncated_checkpoint_restarts_the_run(tmp_path, caplog):
    cache = ArtifactCache(tmp_path)
    folder = _interrupted(cache, 6)
    (folder / "last.pt").write_bytes((folder / "last.pt").read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="replab.train"):
        assert _resume(cache) == list(range(1, 13))
    assert "discarded" in caplog.text


def test_a_diverging_run_stops_with_a_clear_error_and_stores_nothing(tmp_path):
    cache = ArtifactCache(tmp_path)
    bad = dataclasses.replace(CFG, lr=1e30, steps=100)
    with pytest.raises(FloatingPointError, match=r"NaN or infinite .*seed 0.* at update \d+; nothing was stored"):
        train(bad, cache)
    assert load_run(bad, cache) is None
    assert not list(tmp_path.rglob("*.pt"))


@pytest.mark.parametrize("images, message", [
    (torch.full((20, 1, 6, 6), float("nan")), "NaN or infinite"),
    (torch.full((20, 1, 6, 6), 200.0), r"must lie in \[0, 1\] \(uint8 for 0-255\)"),
    (torch.zeros((20, 1, 6, 6), dtype=torch.int32), "must be uint8"),
])
def test_images_a_model_cannot_learn_from_are_refused(images, message):
    with pytest.raises(ValueError, match=message):
        train(dataclasses.replace(CFG, n=None), cache=False, data=images)


def test_run_settings_stay_out_of_the_key_and_definitions_do_not():
    key = run_key(CFG)
    settings = dict(device="cpu", amp=True, compile=True, log_every=5, checkpoint_every=3)
    assert run_key(dataclasses.replace(CFG, **settings)) == key
    for change in (dict(seed=1), dict(lr=1e-3), dict(objective_params={"beta": 3.0}), dict(n=30),
                   dict(model=M.MLPConfig(latent_dim=4, hidden=(16,), input_shape=(1, 6, 6)))):
        assert run_key(dataclasses.replace(CFG, **change)) != key, change
    assert run_key(CFG, data=torch.zeros(40, 1, 6, 6, dtype=torch.uint8)) != key


def test_the_code_behind_a_trained_model_is_the_engine_models_objectives_noise_and_loaders():
    names = {p.relative_to(Path(M.__file__).parents[1]).as_posix() for p in code_closure("replab.train", "replab.data")}
    assert {"objectives.py", "noise.py", "models/vae.py", "models/classifiers.py", "train/loop.py",
            "train/data.py", "data/__init__.py"} <= names
    assert not any(n.startswith(("plotting", "experiments", "similarity")) for n in names)
    assert not names & {"cache.py", "cli.py", "claims.py", "book.py", "grid.py", "notebooks.py"}


KEY_OF = "from replab import models as M; from replab.train import TrainConfig, run_key; " \
         "print(run_key(TrainConfig(M.MLPConfig(latent_dim=3), dataset='synthetic', steps=5)))"
# an inversion model (a model registered from outside the engine) trained on in-memory images
INVERSION_KEY_OF = ("from replab.inversion import PixelCNNConfig; from replab.train import TrainConfig, run_key; "
                    "import torch; d = (torch.zeros(8, 1, 6, 6, dtype=torch.uint8), None); "
                    "c = TrainConfig(PixelCNNConfig(image_shape=(1, 6, 6), n_filters=4, n_res=1), "
                    "objective='conditional_nll', dataset='in-memory', batch_size=4, steps=5); print(run_key(c, d))")
KEY_CASES = {
    "vae": (KEY_OF, ("plotting/__init__.py", "experiments/jamroz2020.py", "similarity/cka.py", "cache.py", "claims.py"),
            ("objectives.py", "models/fc.py", "train/loop.py", "noise.py")),
    "inversion": (INVERSION_KEY_OF, ("experiments/nash.py", "plotting/__init__.py", "inversion/information.py"),
                  ("inversion/pixelcnn.py", "inversion/likelihoods.py", "train/tasks.py")),
}


def _key_in(copy: Path, script: str = KEY_OF) -> str:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True,
                          cwd=copy).stdout.strip()


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(KEY_CASES))
def test_editing_a_plotting_module_changes_no_key_and_editing_an_objective_does(tmp_path, case):
    """A VAE's key, and an inversion model's (whose key also hashes the code of its own model's module)."""
    script, unrelated, behind = KEY_CASES[case]
    src = Path(M.__file__).parents[1]
    copy = tmp_path / "lib"
    shutil.copytree(src, copy / "replab", ignore=shutil.ignore_patterns("__pycache__"))
    before = _key_in(copy, script)
    for module in unrelated:
        with open(copy / "replab" / module, "a") as fh:
            fh.write("\n# an edited comment\n")
    assert _key_in(copy, script) == before
    for module in behind:
        path = copy / "replab" / module
        original = path.read_text()
        path.write_text(original + "\n# an edited comment\n")
        assert _key_in(copy, script) != before, module
        path.write_text(original)
    assert _key_in(copy, script) == before
