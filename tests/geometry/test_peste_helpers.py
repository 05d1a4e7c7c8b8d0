"""The page-level geometry helpers of the Peşte et al. pages: sharpness, variance rise, path lengths, rows."""
import math

import pytest
import torch
from torch import nn

from replab.experiments import peste2017 as px
from replab.geometry import fisher_rao_distance
from replab.models import MLPConfig, MLPVAE


def test_transition_sharpness_of_a_gradual_and_a_sudden_morph():
    a, b = torch.zeros(1, 4, 4), torch.ones(1, 4, 4)
    t = torch.linspace(0, 1, 6).reshape(-1, 1, 1, 1)
    assert px.transition_sharpness((1 - t) * a + t * b) == pytest.approx(1 / 5)
    sudden = torch.stack([a, a, a, b, b, b])
    assert px.transition_sharpness(sudden) == pytest.approx(1.0)
    assert px.largest_step(sudden) == 3
    with pytest.raises(ValueError, match="does not change"):
        px.transition_sharpness(torch.stack([a, a]))


def test_variance_rise_and_path_summary():
    mu1, mu2 = torch.tensor([0.0, 0.0, 1.0]), torch.tensor([5.0, -4.0, 1.0])
    s1, s2 = torch.tensor([0.5, 0.3, 1.0]), torch.tensor([0.5, 0.4, 2.0])
    # both separated dimensions rise (semicircles with the top between the ends); the third is not counted
    assert px.variance_rise(mu1, s1, mu2, s2) == 1.0
    assert math.isnan(px.variance_rise(mu1, s1, mu1 + 0.1, s1))
    summary = px.path_summary(mu1, s1, mu2, s2, n_steps=400)
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
    spread = px.sampling_variability(model, mu1, s, mu2, s, n_steps=9, n_draws=64, device="cpu")
    assert spread["geodesic"] > 2 * spread["line"]


def test_interpolation_rows_start_and_end_at_the_two_images():
    torch.manual_seed(0)
    model = MLPVAE(MLPConfig(latent_dim=4, hidden=(16, 16)))
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    rows = px.interpolation_rows(model, x[0], x[1], n_steps=5, seed=0, device="cpu")
    assert list(rows) == ["pixels", "means", "samples", "geodesic, sampled", "geodesic, means"]
    assert all(r.shape == (5, 1, 28, 28) for r in rows.values())
    torch.testing.assert_close(rows["pixels"][[0, -1]], x)
    with torch.no_grad():
        ends = torch.sigmoid(model.decode(model.encode(x)[0]))
    torch.testing.assert_close(rows["means"][[0, -1]], ends)
    torch.testing.assert_close(rows["geodesic, means"][[0, -1]], ends, rtol=1e-5, atol=1e-5)
    again = px.interpolation_rows(model, x[0], x[1], n_steps=5, seed=0, device="cpu")
    assert all(torch.equal(rows[name], again[name]) for name in rows)   # same seed, same images
