"""The shipped MNIST-10k file, its provenance record, and scikit-learn's digits."""
import hashlib
import re

import numpy as np
import torch

import replab.data as D
from replab.data._base import SHIPPED_DATA


def test_shipped_file_matches_the_recorded_hash():
    readme = (SHIPPED_DATA / "README.md").read_text()
    recorded = re.search(r"SHA-256 `([0-9a-f]{64})`\s*\n\s*\n\(`tests/data", readme).group(1)
    assert hashlib.sha256((SHIPPED_DATA / "mnist10k.npz").read_bytes()).hexdigest() == recorded


def test_mnist10k_split_is_fixed_and_stratified():
    tr, te, al = (D.load("mnist10k", s) for s in ("train", "test", "all"))
    assert (len(tr), len(te), len(al)) == (8000, 2000, 10000)
    assert tr.images.shape == (8000, 1, 28, 28) and tr.images.dtype == torch.uint8
    counts_all = torch.bincount(al.labels, minlength=10).double()
    counts_test = torch.bincount(te.labels, minlength=10).double()
    assert torch.allclose(counts_test, (0.2 * counts_all).round())
    # the test digits are real, distinct from the training digits
    tr_rows = {row.tobytes() for row in tr.images.numpy().reshape(8000, -1)}
    assert not any(row.tobytes() in tr_rows for row in te.images.numpy().reshape(2000, -1)[:200])


def test_mnist10k_looks_like_mnist():
    ds = D.load("mnist10k", "all")
    x = ds.images.double()
    assert abs(x.mean().item() - 33.3) < 1.0           # MNIST's mean grey level
    assert x[:, :, :, :2].mean() < 0.5 and x[:, :, 10:18, 10:18].mean() > 60  # ink in the middle, not the rim
    ones, zeros = x[ds.labels == 1].mean(0)[0], x[ds.labels == 0].mean(0)[0]
    assert ones[14, 14] > zeros[14, 14]                # a 0 has a hole where a 1 has its stroke


def test_digits_scaling_and_split():
    from sklearn.datasets import load_digits

    raw = load_digits()
    ds = D.load("digits", "all")
    assert ds.images.shape == (1797, 1, 8, 8)
    assert torch.equal(ds.images[:, 0], torch.from_numpy(np.rint(raw.images * 255 / 16).astype(np.uint8)))
    assert ds.images.max() == 255 and torch.equal(ds.labels, torch.from_numpy(raw.target).long())
    te = D.load("digits", "test")
    assert len(te) == 359 and torch.equal(te.images, D.load("digits", "test").images)
