"""Active latent components: the spectrum of Cov_x[μ(x)] and the count above ε."""
import numpy as np
import pytest
import torch

from replab.geometry import active_components, active_units, count_active, posterior_mean_spectrum


def _synthetic_encoder_means(n, k, n_active, seed=0):
    """Means of an encoder whose first ``n_active`` dimensions depend on x and the rest are constant."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g, dtype=torch.float64)
    w = torch.randn(20, n_active, generator=g, dtype=torch.float64)
    used = torch.tanh(x @ w)                                   # variance well above 0.01
    unused = torch.full((n, k - n_active), 0.3, dtype=torch.float64) + torch.arange(k - n_active) * 0.1
    return torch.cat([used, unused], 1)


@pytest.mark.parametrize("k,n_active", [(30, 7), (50, 7), (10, 0), (12, 12)])
def test_count_is_exact_for_constant_unused_dimensions(k, n_active):
    means = _synthetic_encoder_means(500, k, n_active)
    assert active_components(means) == n_active
    assert active_units(means) == n_active
    spectrum = posterior_mean_spectrum(means)
    assert spectrum.shape == (k,)
    assert (spectrum[n_active:] < 1e-12).all()


def test_spectrum_matches_numpy_and_is_rotation_invariant():
    means = _synthetic_encoder_means(300, 8, 5)
    expected = np.sort(np.linalg.eigvalsh(np.cov(means.numpy(), rowvar=False, bias=True)))[::-1]
    np.testing.assert_allclose(posterior_mean_spectrum(means).numpy(), expected, rtol=1e-10, atol=1e-13)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    rotated = means @ q
    torch.testing.assert_close(posterior_mean_spectrum(rotated), posterior_mean_spectrum(means))
    assert active_components(rotated) == 5
    assert active_units(rotated) > 5     # the axis-aligned count is not rotation invariant


def test_threshold_is_strict_and_validated():
    assert count_active(torch.tensor([0.5, 0.01, 0.011, 0.0])) == 2
    with pytest.raises(ValueError, match="threshold must be positive"):
        count_active(torch.tensor([1.0]), threshold=0.0)


@pytest.mark.parametrize("means,message", [
    (torch.zeros(5), r"means: expected a matrix of shape \(n_examples, k\)"),
    (torch.zeros(1, 3), "means: needs at least 2 examples"),
    (torch.tensor([[0.0, float("inf")], [1.0, 1.0]]), "means: contains infinite values"),
])
def test_bad_means_raise(means, message):
    with pytest.raises(ValueError, match=message):
        posterior_mean_spectrum(means)


@pytest.mark.parametrize("n_active", [3, 9])
def test_count_is_exact_for_a_vae_whose_unused_dimensions_have_constant_means(n_active):
    from replab.experiments.peste2017 import encode
    from replab.models import MLPConfig, MLPVAE

    torch.manual_seed(0)
    model = MLPVAE(MLPConfig(latent_dim=12, hidden=(32, 32)))
    with torch.no_grad():
        model.mean.weight[:n_active] *= 20                 # used: means that vary well above ε over the data
        model.mean.weight[n_active:] = 0                   # unused: μ(x) is the bias, whatever x
        model.mean.bias[n_active:] = torch.linspace(-1, 1, 12 - n_active)
    x = torch.rand(400, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    mu, _ = encode(model, x, batch_size=128, device="cpu")
    assert (mu[:, :n_active].var(0) > 0.05).all()          # the construction did what it says
    assert active_components(mu) == n_active
    assert active_units(mu) == n_active
    assert (posterior_mean_spectrum(mu)[n_active:] < 1e-12).all()


def test_active_units_unbiased_divides_by_n_minus_one():
    # two dimensions whose variance straddles the threshold only under one normalisation: with N = 4 examples
    # of ±a the biased variance is a², the unbiased one 4a²/3
    a = 0.095  # a² = 0.009025 < 0.01 < 4a²/3 = 0.01203
    means = torch.tensor([[a, 1.0], [-a, 1.0], [a, 1.0], [-a, 1.0]], dtype=torch.float64)
    assert active_units(means) == 0
    assert active_units(means, unbiased=True) == 1
    assert int((means.var(0) > 0.01).sum()) == 1  # torch's default is the unbiased estimate
