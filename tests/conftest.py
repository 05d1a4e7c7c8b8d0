import os

import numpy as np
import pytest
import torch
from PIL import Image

# Two test workers share two cores: one thread each.
torch.set_num_threads(1)
os.environ.setdefault("REPLAB_QUIET", "1")
os.environ.setdefault("MPLBACKEND", "agg")


@pytest.fixture
def rng():
    """A seeded NumPy generator."""
    return np.random.default_rng(0)


@pytest.fixture
def gen():
    """A seeded torch generator."""
    g = torch.Generator()
    g.manual_seed(0)
    return g


def _assert_identical_runs(whole, resumed, steps=()):
    """An interrupted and resumed run equals the uninterrupted one exactly: weights, the snapshots at ``steps``,
    metrics."""
    import pandas as pd

    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    for step in steps:
        for name, value in whole.snapshots[step].items():
            assert torch.equal(value, resumed.snapshots[step][name]), (step, name)
    pd.testing.assert_frame_equal(whole.metrics, resumed.metrics)


@pytest.fixture
def identical_runs():
    """The check that a resumed run equals its uninterrupted run (see :func:`_assert_identical_runs`)."""
    return _assert_identical_runs


def _write_celeba(root, n=48):
    """A CelebA root in the official layout whose 3 random attributes are visible (each brightens one colour
    channel of a noisy image); every fourth image is in the test partition."""
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    table = np.where(rng.random((n, 3)) < 0.5, 1, -1)
    for k, row in enumerate(table):
        pixels = np.where(row > 0, 170, 70) + rng.integers(-50, 50, (218, 178, 3))
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{k + 1:06d}.jpg", quality=95)
    lines = [str(n), "Black_Hair Smiling Young"] + [f"{k + 1:06d}.jpg " + " ".join(f"{v:2d}" for v in row)
                                                     for k, row in enumerate(table)]
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{k + 1:06d}.jpg {2 if k % 4 == 3 else 0}\n"
                                                          for k in range(n)))
    return (table > 0).astype(np.int64)


@pytest.fixture
def write_celeba():
    """``write_celeba(root, n=48)``: a small CelebA folder in the official layout; returns its 0/1 attributes."""
    return _write_celeba
