"""cka_matrix against the per-pair functions, for every metric and both computation routes."""
import numpy as np
import pandas as pd
import pytest
import torch

from replab.similarity import cka_matrix, linear_cka, procrustes_similarity, rbf_cka


def _layers(seed, n, widths, offset=0.0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 6, generator=g)
    return {f"layer{i}": base @ torch.randn(6, w, generator=g) + torch.randn(n, w, generator=g) + offset
            for i, w in enumerate(widths)}


PAIRWISE = {
    "linear_cka": lambda a, b, d: linear_cka(a, b, debiased=d),
    "rbf_cka": lambda a, b, d: rbf_cka(a, b, debiased=d),
    "procrustes": lambda a, b, d: procrustes_similarity(a, b),
}


@pytest.mark.parametrize("metric", ["linear_cka", "rbf_cka", "procrustes"])
@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("widths", [(3, 5, 4), (8, 150, 40, 90)])  # narrow: feature route; wide: Gram route
def test_equals_per_pair_loop(metric, debiased, widths):
    xs = _layers(0, 50, widths, offset=5.0)
    ys = _layers(1, 50, widths[::-1])
    ys["layer0"] = xs["layer1"] @ torch.randn(xs["layer1"].shape[1], 7, generator=torch.Generator().manual_seed(2))
    table = cka_matrix(xs, ys, metric=metric, debiased=debiased, precision="float64")
    assert isinstance(table, pd.DataFrame)
    assert list(table.index) == list(xs) and list(table.columns) == list(ys)
    want = np.array([[PAIRWISE[metric](x, y, debiased) for y in ys.values()] for x in xs.values()])
    np.testing.assert_allclose(table.to_numpy(), want, atol=1e-9)
    np.testing.assert_allclose(cka_matrix(xs, ys, metric=metric, debiased=debiased).to_numpy(), want, atol=1e-6)


@pytest.mark.parametrize("metric", ["linear_cka", "procrustes"])
def test_self_comparison_is_symmetric_with_unit_diagonal(metric):
    table = cka_matrix(list(_layers(3, 30, (4, 60, 9)).values()), metric=metric)
    assert list(table.index) == ["0", "1", "2"]
    np.testing.assert_allclose(np.diag(table), 1.0, atol=1e-9)
    np.testing.assert_allclose(table.to_numpy(), table.to_numpy().T, atol=1e-12)


def test_float32_inputs_with_large_mean_match_float64_reference():
    xs = {k: v.float() for k, v in _layers(4, 300, (20, 700), offset=1e3).items()}
    table = cka_matrix(xs, metric="linear_cka")
    want = linear_cka(xs["layer0"].double(), xs["layer1"].double())
    assert table.loc["layer0", "layer1"] == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("widths", [(3, 5, 4), (8, 150, 40, 90)])
@pytest.mark.parametrize("debiased", [False, True])
def test_mixed_precision_matches_float64(widths, debiased):
    xs = _layers(6, 60, widths, offset=1e4)  # float64 inputs with a large mean: centred before any float32
    ys = _layers(7, 60, widths)
    mixed = cka_matrix(xs, ys, debiased=debiased)
    exact = cka_matrix(xs, ys, debiased=debiased, precision="float64")
    np.testing.assert_allclose(mixed.to_numpy(), exact.to_numpy(), atol=1e-6)
    if max(widths) > 60:  # the Gram route (wide layers) really runs its products in float32
        assert np.abs(mixed.to_numpy() - exact.to_numpy()).max() > 0


def test_bad_inputs_name_the_layer():
    xs = _layers(5, 20, (3, 4))
    with pytest.raises(ValueError, match=r"^layer 'layer1' of ys: has 19 examples but the other layers have 20"):
        cka_matrix(xs, {"layer0": xs["layer0"], "layer1": xs["layer1"][:19]})
    bad = dict(xs, conv2=torch.full((20, 5), float("nan")))
    with pytest.raises(ValueError, match=r"^layer 'conv2' of xs: contains NaN values$"):
        cka_matrix(bad)
    with pytest.raises(ValueError, match=r"^layer 'flat' of xs: is constant"):
        cka_matrix(dict(xs, flat=torch.ones(20, 3)))
    with pytest.raises(ValueError, match=r"^layer 'layer0' of xs: needs at least 4 examples"):
        cka_matrix({k: v[:3] for k, v in xs.items()}, debiased=True)
    with pytest.raises(ValueError, match=r"^metric: expected one of"):
        cka_matrix(xs, metric="cca")
    with pytest.raises(ValueError, match=r"^precision: expected 'mixed' or 'float64'"):
        cka_matrix(xs, precision="half")
    with pytest.raises(ValueError, match=r"^xs: no layers given$"):
        cka_matrix({})


@pytest.mark.parametrize("n,block", [(31, 7), (601, 256)])  # a last block shorter than the others
def test_blocked_gram_equals_one_product(n, block):
    from replab.similarity.cka import _gram_float64

    x = torch.randn(n, 13, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    np.testing.assert_allclose(_gram_float64(x, block=block).numpy(), (x @ x.T).numpy(), rtol=0, atol=1e-12)


def test_gram_route_beyond_one_block_matches_per_pair():
    # n = 600 > 2 blocks of 256, so the Grams are formed block by block and mirrored.
    xs = _layers(9, 600, (700, 900), offset=3.0)
    ys = _layers(10, 600, (800, 650))
    table = cka_matrix(xs, ys)
    want = np.array([[linear_cka(x, y) for y in ys.values()] for x in xs.values()])
    np.testing.assert_allclose(table.to_numpy(), want, atol=1e-6)


def test_rbf_bandwidth_error_names_the_layer():
    xs = _layers(11, 20, (3, 4))
    dup = torch.zeros(20, 3)
    dup[15:] = torch.randn(5, 3, generator=torch.Generator().manual_seed(12))  # 15 identical rows: median D² = 0
    with pytest.raises(ValueError, match=r"^layer 'dup' of ys: the median pairwise distance is 0"):
        cka_matrix(xs, {"ok": xs["layer0"], "dup": dup}, metric="rbf_cka")
    with pytest.raises(ValueError, match=r"^y: the median pairwise distance is 0"):
        rbf_cka(xs["layer0"], dup)
