"""Minibatch CKA (Nguyen et al. 2021) against the full-data unbiased HSIC and the Gram formulation."""
import numpy as np
import pytest
import torch

from replab.similarity import MinibatchCKA, center_gram, linear_cka, minibatch_cka


def _pair(n, seed=0, offset=0.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g, dtype=dtype) + offset
    y = x[:, :8] @ torch.randn(8, 30, generator=g, dtype=dtype) + 2 * torch.randn(n, 30, generator=g, dtype=dtype)
    return x, y


def test_one_batch_equals_full_data_debiased_cka():
    x, y = _pair(100)
    got = minibatch_cka([(x, y)])
    assert got == pytest.approx(linear_cka(x, y, debiased=True), abs=1e-10)


def test_batches_combine_unbiased_hsic_of_each_batch():
    x, y = _pair(120, seed=1)
    batches = [(x[i:i + 40], y[i:i + 40]) for i in range(0, 120, 40)]

    def hsic1(a, b):  # U-centred Gram formulation, per batch
        ka = center_gram(a @ a.T, unbiased=True)
        kb = center_gram(b @ b.T, unbiased=True)
        return float((ka * kb).sum())

    num = sum(hsic1(a, b) for a, b in batches)
    den = np.sqrt(sum(hsic1(a, a) for a, _ in batches) * sum(hsic1(b, b) for _, b in batches))
    assert minibatch_cka(batches) == pytest.approx(num / den, abs=1e-10)


def test_converges_to_full_data_unbiased_estimate():
    x, y = _pair(4000, seed=2)
    got = minibatch_cka([(x[i:i + 200], y[i:i + 200]) for i in range(0, 4000, 200)])
    full = linear_cka(x, y, debiased=True)
    biased_small = np.mean([linear_cka(x[i:i + 200], y[i:i + 200]) for i in range(0, 4000, 200)])
    assert abs(got - full) < 0.02
    assert abs(biased_small - full) > abs(got - full)  # what the unbiased estimator buys


def test_float32_batches_with_large_offset():
    x, y = _pair(600, seed=3, offset=1e3, dtype=torch.float32)
    batches = [(x[i:i + 100], y[i:i + 100]) for i in range(0, 600, 100)]
    want = minibatch_cka([(a.double() - 1e3, b.double()) for a, b in batches])
    assert minibatch_cka(batches) == pytest.approx(want, abs=1e-6)


def test_all_pairs_table_and_loader():
    x, y = _pair(300, seed=4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=50)
    acc = MinibatchCKA(device="cpu")
    for a, b in loader:
        acc.update({"x": a, "y": b})
    table = acc.result()
    assert list(table.index) == ["x", "y"]
    np.testing.assert_allclose(np.diag(table), 1.0, atol=1e-12)
    assert table.loc["x", "y"] == pytest.approx(minibatch_cka(loader), abs=1e-12)


def test_bad_batches():
    x, y = _pair(10)
    with pytest.raises(ValueError, match=r"^layer 'x' of xs: needs at least 4 examples"):
        MinibatchCKA().update({"x": x[:3]})
    with pytest.raises(ValueError, match=r"^xs and ys must hold the same examples"):
        MinibatchCKA().update({"x": x}, {"y": y[:8]})
    with pytest.raises(ValueError, match=r"^MinibatchCKA: no batch was added"):
        MinibatchCKA().result()


def test_float32_wide_layers_match_the_float64_per_pair_estimator():
    # The stacked-Gram accumulator forms float32 Grams from centred features; the U-centring and sums run in
    # float64. Oracle: the feature-space U-statistic of every pair, all in float64.
    from replab.similarity import hsic_unbiased_features

    g = torch.Generator().manual_seed(5)
    z = torch.randn(256, 16, generator=g)
    xs = {f"x{i}": torch.relu(z @ torch.randn(16, w, generator=g) + torch.randn(256, w, generator=g) + 0.5)
          for i, w in enumerate((3, 40, 700, 3000))}
    ys = {f"y{i}": torch.relu(z @ torch.randn(16, w, generator=g) + 0.3 * torch.randn(256, w, generator=g))
          for i, w in enumerate((2000, 10, 100))}
    acc = MinibatchCKA(device="cpu")
    for s in range(0, 256, 64):
        acc.update({k: v[s:s + 64] for k, v in xs.items()}, {k: v[s:s + 64] for k, v in ys.items()})

    def terms(a, b):
        out = 0.0
        for s in range(0, 256, 64):
            u, v = a[s:s + 64].double(), b[s:s + 64].double()
            out += float(hsic_unbiased_features(u - u.mean(0), v - v.mean(0)))
        return out

    want = np.array([[terms(x, y) / np.sqrt(terms(x, x) * terms(y, y)) for y in ys.values()] for x in xs.values()])
    np.testing.assert_allclose(acc.result().to_numpy(), want, rtol=0, atol=1e-8)
    assert acc.n_examples_ == 256 and acc.n_batches_ == 4
