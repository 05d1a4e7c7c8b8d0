"""The geometry helpers of the Peşte et al. pages: sharpness, variance rise, path lengths, rows, axis alignment."""
import math

import pytest
import torch
from torch import nn

from replab import geometry
from replab.geometry import fisher_rao_distance
from replab.models import MLPConfig, MLPVAE


def test_transition_sharpness_of_a_gradual_and_a_sudden_morph():
    a, b = torch.zeros(1, 4, 4), torch.ones(1, 4, 4)
    t = torch.linspace(0, 1, 6).reshape(-1, 1, 1, 1)
    assert geometry.transition_sharpness((1 - t) * a + t * b) == pytest.approx(1 / 5)
    sudden = torch.stack([a, a, a, b, b, b])
    assert geometry.transition_sharpness(sudden) == pytest.approx(1.0)
    assert geometry.largest_step(sudden) == 3
    with pytest.raises(ValueError, match="does not change"):
        geometry.transition_sharpness(torch.stack([a, a]))


def test_variance_rise_and_path_summary():
    mu1, mu2 = torch.tensor([0.0, 0.0, 1.0]), torch.tensor([5.0, -4.0, 1.0])
    s1, s2 = torch.tensor([0.5, 0.3, 1.0]), torch.tensor([0.5, 0.4, 2.0])
    # both separated dimensions rise (semicircles with the top between the ends); the third is not counted
    assert geometry.variance_rise(mu1, s1, mu2, s2) == 1.0
    assert math.isnan(geometry.variance_rise(mu1, s1, mu1 + 0.1, s1))
    assert geometry.variance_rise_counts(mu1, s1, mu2, s2) == (2, 2)
    assert geometry.variance_rise_counts(mu1, s1, mu1 + 0.1, s1) == (0, 0)
    # a dimension whose σ grows a lot over a small step of the mean: the geodesic's σ does not overshoot the larger
    assert geometry.variance_rise_counts(torch.tensor([0.0]), torch.tensor([0.1]), torch.tensor([1.0]),
                                         torch.tensor([5.0]), min_separation=0.1) == (0, 1)
    summary = geometry.path_summary(mu1, s1, mu2, s2, n_steps=400)
    assert summary["fisher_rao_distance"].item() == pytest.approx(fisher_rao_distance(mu1, s1, mu2, s2).item())
    assert summary["fisher_rao_length_of_line"] > summary["fisher_rao_distance"]
    assert summary["fisher_rao_length_of_legacy_semicircles"] > summary["fisher_rao_distance"]
    assert summary["euclidean_distance_of_means"].item() == pytest.approx(math.hypot(5.0, 4.0))


class _LinearDecoder(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.out = nn.Linear(d, 16)
        nn.init.normal_(self.out.weight, std=0.05, generator=torch.Generator().manual_seed(0))

    def decode(self, z):
        return self.out(z)


def test_samples_vary_more_along_the_geodesic_when_its_sigma_rises():
    model = _LinearDecoder(2).double()
    mu1, mu2 = torch.tensor([-3.0, 2.0]), torch.tensor([3.0, -2.0])
    s = torch.tensor([0.3, 0.3])
    spread = geometry.sampling_variability(model, mu1, s, mu2, s, n_steps=9, n_draws=64, device="cpu")
    assert spread["geodesic"] > 2 * spread["line"]


def test_interpolation_rows_start_and_end_at_the_two_images():
    torch.manual_seed(0)
    model = MLPVAE(MLPConfig(latent_dim=4, hidden=(16, 16)))
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    rows = geometry.interpolation_rows(model, x[0], x[1], n_steps=5, seed=0, device="cpu")
    assert list(rows) == ["pixels", "means", "samples", "geodesic, sampled", "geodesic, means"]
    assert all(r.shape == (5, 1, 28, 28) for r in rows.values())
    torch.testing.assert_close(rows["pixels"][[0, -1]], x)
    with torch.no_grad():
        ends = torch.sigmoid(model.decode(model.encode(x)[0]))
    torch.testing.assert_close(rows["means"][[0, -1]], ends)
    torch.testing.assert_close(rows["geodesic, means"][[0, -1]], ends, rtol=1e-5, atol=1e-5)
    again = geometry.interpolation_rows(model, x[0], x[1], n_steps=5, seed=0, device="cpu")
    assert all(torch.equal(rows[name], again[name]) for name in rows)   # same seed, same images


def _rotation(k: int, seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(k, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def test_axis_alignment_is_one_on_the_axes_and_falls_when_the_active_block_turns():
    g = torch.Generator().manual_seed(0)
    scales = torch.tensor([3.0, 2.0, 1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    mu = torch.randn(4000, 6, generator=g, dtype=torch.float64) * scales
    assert geometry.axis_alignment(mu) == pytest.approx(1.0)
    # permuting and flipping the axes keeps the alignment; rotating the active block within itself too
    perm = torch.eye(6, dtype=torch.float64)[[4, 0, 5, 2, 1, 3]] * torch.tensor([1, -1, 1, 1, -1, 1.0])
    assert geometry.axis_alignment(mu @ perm) == pytest.approx(1.0)
    inside = torch.eye(6, dtype=torch.float64)
    inside[:3, :3] = _rotation(3, 1)
    assert geometry.axis_alignment(mu @ inside) == pytest.approx(1.0)
    # one direction at 45° between an active and an inactive axis: its energy splits evenly over the two
    c = math.sqrt(0.5)
    tilt = torch.tensor([[c, c], [-c, c]], dtype=torch.float64)
    two = torch.randn(4000, 1, generator=g, dtype=torch.float64) * torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    assert geometry.axis_alignment(two @ tilt) == pytest.approx(0.5)
    # a rotation of the whole space: the three directions spread over all six axes
    turned = geometry.axis_alignment(mu @ _rotation(6, 2))
    assert 3 / 6 - 0.2 < turned < 0.9
    assert geometry.axis_alignment(mu, n_components=1) == pytest.approx(1.0, abs=0.01)   # sampling noise only
    assert math.isnan(geometry.axis_alignment(torch.zeros(10, 3, dtype=torch.float64)))
    with pytest.raises(ValueError, match="n_components"):
        geometry.axis_alignment(mu, n_components=7)
