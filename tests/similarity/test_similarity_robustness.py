"""Hostile inputs to the similarity metrics: extreme scales, degenerate bandwidths, too few examples, complex values,
layers whose width changes between minibatches; and the invariances as properties of random inputs."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from replab.similarity import (MinibatchCKA, cka_matrix, linear_cka, minibatch_cka, permutation_test,
                               procrustes_similarity, rbf_cka, similarity_grid)
from replab.similarity.cka import center_gram

METRICS = {
    "linear": lambda a, b: linear_cka(a, b),
    "debiased": lambda a, b: linear_cka(a, b, debiased=True),
    "rbf": lambda a, b: rbf_cka(a, b),
    "procrustes": procrustes_similarity,
    "matrix": lambda a, b: float(cka_matrix({"a": a}, {"b": b}).iloc[0, 0]),
    "matrix_procrustes": lambda a, b: float(cka_matrix({"a": a}, {"b": b}, metric="procrustes").iloc[0, 0]),
    "minibatch": lambda a, b: minibatch_cka([(a[:20], b[:20]), (a[20:], b[20:])]),
    "grid": lambda a, b: float(similarity_grid({"A": {"a": a}, "B": {"b": b}}, metrics=["linear_cka", "procrustes"],
                                               pairs=[("A", "B")], device="cpu").value.min()),
}


def _pair(n=40, p=6, q=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, p, generator=g, dtype=torch.float64)
    k = min(p, 3)
    y = x[:, :k] @ torch.randn(k, q, generator=g, dtype=torch.float64) + torch.randn(n, q, generator=g,
                                                                                   dtype=torch.float64)
    return x, y


@pytest.mark.parametrize("metric", list(METRICS))
@pytest.mark.parametrize("sx,sy", [(1e200, 1.0), (1e-200, 1.0), (1e200, 1e-200), (1e-300, 1e300), (1e-310, 1.0)])
def test_any_finite_scale_gives_the_unscaled_value(metric, sx, sy):
    # Before the rescaling: 1e200 overflowed the Grams (NaN) and 1e-200 underflowed them (NaN, or 0 for Procrustes).
    x, y = _pair()
    want = METRICS[metric](x, y)
    got = METRICS[metric](x * sx, y * sy)
    assert np.isfinite(got)
    assert got == pytest.approx(want, abs=1e-9)


def test_float32_extremes_give_the_unscaled_value():
    x, y = _pair()
    want = linear_cka(x, y)
    for s in (1e30, 1e-30, 1e-40):  # 1e-40 is subnormal in float32
        assert float(cka_matrix({"a": (x * s).float()}, {"b": y.float()}).iloc[0, 0]) == pytest.approx(want, abs=1e-5)
    assert minibatch_cka([((x * 1e30).float(), y.float())]) == pytest.approx(linear_cka(x, y, debiased=True),
                                                                           abs=1e-5)


@pytest.mark.parametrize("sigma", [float("inf"), float("nan"), 0.0, -1.0, "0.8", True])
def test_rbf_bandwidth_must_be_finite_and_positive(sigma):
    x, y = _pair()
    with pytest.raises(ValueError, match=r"sigma\): expected a finite positive number"):
        rbf_cka(x, y, sigma=sigma)
    with pytest.raises(ValueError, match=r"sigma\): expected a finite positive number"):
        cka_matrix({"a": x}, {"b": y}, metric="rbf_cka", sigma=sigma)


def test_tiny_rbf_bandwidth_has_its_limit():
    # sigma² underflows to 0: every kernel tends to the identity, whose CKA with itself is 1 (was NaN: 0/0 on the
    # diagonal)
    x, y = _pair()
    assert rbf_cka(x, y, sigma=1e-300) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("metric", ["linear", "rbf", "procrustes", "matrix", "matrix_procrustes", "grid"])
def test_two_examples_are_refused(metric):
    # With two examples every centred layer is one direction, so every score was 1.0 for any two layers.
    x, y = _pair(n=2)
    with pytest.raises(ValueError, match=r"needs at least 3 examples \(with 2, every centred layer is a single "
                                         r"direction and every score is 1\), got 2"):
        METRICS[metric](x, y)
    x3, y3 = _pair(n=3)
    assert 0.0 <= METRICS[metric](x3, y3) <= 1.0 + 1e-12


def test_debiased_estimators_say_they_need_four():
    x, y = _pair(n=3)
    for fn in (METRICS["debiased"], lambda a, b: minibatch_cka([(a, b)])):
        with pytest.raises(ValueError, match=r"needs at least 4 examples \(the unbiased HSIC divides by n - 3\), "
                                             r"got 3"):
            fn(x, y)
    with pytest.raises(ValueError, match=r"needs at least 3 examples"):
        permutation_test(x[:2], y[:2])


@pytest.mark.parametrize("metric", list(METRICS))
def test_complex_input_is_refused(metric):
    x, y = _pair()
    for a, b, name in ((x.to(torch.complex128), y, "a|x"), (x, y.numpy() + 1j, "b|y")):
        with pytest.raises(ValueError, match=r"has complex values"):
            METRICS[metric](a, b)


def test_minibatch_refuses_a_width_that_changes_between_batches():
    x, y = _pair(n=40)
    acc = MinibatchCKA(device="cpu").update({"x": x[:20]}, {"y": y[:20]})
    with pytest.raises(ValueError, match=r"^layer 'y' of ys: has 5 features in this batch but 9 in the first batch"):
        acc.update({"x": x[20:]}, {"y": y[20:, :5]})
    with pytest.raises(ValueError, match=r"^layer 'x' of xs: has 7 features in this batch but 6 in the first batch"):
        minibatch_cka([(x[:20], y[:20]), (torch.cat([x[20:], x[20:, :1]], 1), y[20:])])


def _hsic1_terms(a, b):
    ka, kb = center_gram(a @ a.T, unbiased=True), center_gram(b @ b.T, unbiased=True)
    m = a.shape[0]
    return [float((u * v).sum()) / (m * (m - 3)) for u, v in ((ka, kb), (ka, ka), (kb, kb))]


def test_minibatch_batches_at_very_different_scales_weigh_by_their_scale():
    # The second batch of x is 1e-200 times the first: its HSIC terms are 1e-400 and 1e-800 times as large, so the
    # closed form keeps only the first batch's x-terms and both batches' y-terms. (Rescaling each batch on its own
    # would weigh them alike.)
    x, y = _pair(n=60, seed=1)
    (c1, sx1, sy1), (_, _, sy2) = _hsic1_terms(x[:30], y[:30]), _hsic1_terms(x[30:], y[30:])
    want = c1 / np.sqrt(sx1 * (sy1 + sy2))
    got = minibatch_cka([(x[:30], y[:30]), (x[30:] * 1e-200, y[30:])])
    assert got == pytest.approx(want, rel=1e-10)
    got = minibatch_cka([(x[30:] * 1e-200, y[30:]), (x[:30], y[:30])])  # the larger batch second
    assert got == pytest.approx(want, rel=1e-10)
    both = minibatch_cka([(x[:30] * 1e250, y[:30] * 1e-250), (x[30:] * 1e250, y[30:] * 1e-250)])
    assert both == pytest.approx(minibatch_cka([(x[:30], y[:30]), (x[30:], y[30:])]), abs=1e-12)


# --- invariances as properties -----------------------------------------------------------------------------------
_seeds = st.integers(0, 2**31 - 1)
_scales = st.floats(1e-150, 1e150)


def _random_orthogonal(q, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(q, q, generator=g, dtype=torch.float64)).Q


@settings(max_examples=25, deadline=None)
@given(seed=_seeds, scale=_scales, shift=st.floats(-1e3, 1e3), n=st.integers(5, 40), p=st.integers(1, 12),
       q=st.integers(1, 60), metric=st.sampled_from(["linear", "debiased", "rbf", "procrustes"]))
def test_invariant_to_orthogonal_maps_isotropic_scaling_and_translation(seed, scale, shift, n, p, q, metric):
    x, y = _pair(n, p, q, seed)
    fn = METRICS[metric]
    base = fn(x, y)
    moved = fn(x, scale * (y @ _random_orthogonal(q, seed + 1) + shift))  # shifted at the data's own scale
    assert np.isfinite(base) and moved == pytest.approx(base, abs=1e-8)
    assert fn(y, x) == pytest.approx(base, abs=1e-10)  # symmetric
    if metric != "debiased":
        assert -1e-12 <= base <= 1 + 1e-12


@settings(max_examples=20, deadline=None)
@given(seed=_seeds, n=st.integers(4, 30), p=st.integers(1, 50))
def test_self_similarity_is_one(seed, n, p):
    x, _ = _pair(n, p, 2, seed)
    for metric in ("linear", "debiased", "procrustes"):
        assert METRICS[metric](x, x) == pytest.approx(1.0, abs=1e-9)
