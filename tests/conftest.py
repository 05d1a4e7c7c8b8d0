import os

import numpy as np
import pytest
import torch

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
