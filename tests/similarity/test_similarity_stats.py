"""Bootstrap intervals that cover the full-data value, and permutation tests with the right verdicts."""
import numpy as np
import pytest
import torch

from replab.similarity import bootstrap_ci, linear_cka, permutation_test


def _population(n=20000, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 30, generator=g, dtype=torch.float64)
    y = x[:, :15] @ torch.randn(15, 40, generator=g, dtype=torch.float64) + torch.randn(n, 40, generator=g,
                                                                                         dtype=torch.float64)
    return x, y


@pytest.mark.parametrize("debiased", [False, True])
def test_bootstrap_interval_covers_full_data_value(debiased):
    x, y = _population()
    full = linear_cka(x, y, debiased=debiased)
    g = torch.Generator().manual_seed(1)
    covered = 0
    for r in range(20):
        idx = torch.randperm(x.shape[0], generator=g)[:150]
        res = bootstrap_ci(x[idx], y[idx], n_boot=150, seed=r, debiased=debiased)
        covered += res.low <= full <= res.high
    assert covered >= 16  # 95% intervals; the plain percentile interval covers 0 of 20 (biased)


def test_percentile_interval_is_biased_for_cka():
    x, y = _population()
    full = linear_cka(x, y)
    idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(2))[:150]
    res = bootstrap_ci(x[idx], y[idx], n_boot=200, method="percentile")
    assert res.low > full  # the reason the default keeps only distinct examples


def test_bootstrap_is_seeded_and_works_for_any_metric():
    x, y = _population(200)
    a = bootstrap_ci(x, y, metric="procrustes", n_boot=30, seed=3)
    b = bootstrap_ci(x, y, metric="procrustes", n_boot=30, seed=3)
    assert np.array_equal(a.samples, b.samples) and (a.low, a.high) == (b.low, b.high)
    assert a.low < a.high
    c = bootstrap_ci(x, y, metric=lambda u, v: float(torch.corrcoef(torch.stack([u[:, 0], v[:, 0]]))[0, 1]),
                     n_boot=30)
    assert c.low < c.high


def test_permutation_test_rejects_related_and_not_unrelated():
    x, y = _population(120, seed=4)
    related = permutation_test(x, y, n_perm=200, seed=0)
    assert related.p_value == pytest.approx(1 / 201)
    z = torch.randn(120, 40, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    unrelated = permutation_test(x, z, n_perm=200, seed=0)
    assert unrelated.p_value > 0.05
    assert unrelated.statistic == pytest.approx(linear_cka(x, z), abs=1e-12)
    # The generic path agrees with the fast Gram path on the same permutations.
    generic = permutation_test(x, z, metric=lambda u, v: linear_cka(u, v), n_perm=20, seed=0)
    np.testing.assert_allclose(generic.null, permutation_test(x, z, n_perm=20, seed=0).null, atol=1e-10)


def test_permutation_p_values_are_roughly_uniform_under_the_null():
    g = torch.Generator().manual_seed(6)
    ps = [permutation_test(torch.randn(30, 5, generator=g), torch.randn(30, 5, generator=g), n_perm=99,
                           seed=s).p_value for s in range(40)]
    assert 0.05 < np.mean(np.array(ps) <= 0.2) < 0.4


def test_bad_arguments():
    x, y = _population(50)
    with pytest.raises(ValueError, match=r"^level: expected a number in \(0, 1\)"):
        bootstrap_ci(x, y, level=95)
    with pytest.raises(ValueError, match=r"^n_perm: expected a positive integer"):
        permutation_test(x, y, n_perm=0)
    with pytest.raises(ValueError, match=r"^metric: expected"):
        permutation_test(x, y, metric="cca")
    with pytest.raises(ValueError, match=r"^method: expected"):
        bootstrap_ci(x, y, method="bca")
