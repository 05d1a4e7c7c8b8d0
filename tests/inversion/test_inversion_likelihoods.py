"""Pixel likelihoods against independent oracles: scipy's logistic CDF, normalisation over all 256 values."""
import numpy as np
import pytest
import torch
from scipy.stats import logistic

from replab.inversion.likelihoods import LogisticMixture, Softmax256, check_images


def _direct_mixture_log_prob(out, x, n_mix):
    """Per-pixel log-likelihood by the definition, in float64 with scipy: mixture over components of the product
    over channels of CDF differences over each value's bin, open-ended at 0 and 255; coupled means."""
    out, x = out.double().numpy(), x.numpy()
    b, _, h, w = out.shape
    c = x.shape[1]
    k = n_mix
    pairs = [(ch, j) for ch in range(1, c) for j in range(ch)]
    res = np.zeros((b, h, w))
    for n in range(b):
        for i in range(h):
            for jj in range(w):
                o = out[n, :, i, jj]
                pis = np.exp(o[:k] - o[:k].max())
                pis /= pis.sum()
                xs = x[n, :, i, jj] / 127.5 - 1.0
                total = 0.0
                for comp in range(k):
                    p = pis[comp]
                    for ch in range(c):
                        mu = o[k + ch * k + comp]
                        for pi_, (cc, j) in enumerate(pairs):
                            if cc == ch:
                                mu += np.tanh(o[k + 2 * c * k + pi_ * k + comp]) * xs[j]
                        s = np.exp(max(o[k + c * k + ch * k + comp], -7.0))
                        hi = np.inf if x[n, ch, i, jj] == 255 else xs[ch] + 1 / 255
                        lo = -np.inf if x[n, ch, i, jj] == 0 else xs[ch] - 1 / 255
                        # Above the mean, survival-function differences avoid cancellation near CDF = 1.
                        if lo > mu:
                            p *= logistic.sf(lo, mu, s) - logistic.sf(hi, mu, s)
                        else:
                            p *= logistic.cdf(hi, mu, s) - logistic.cdf(lo, mu, s)
                    total += p
                res[n, i, jj] = np.log(total)
    return res


@pytest.mark.parametrize("channels", [1, 3])
def test_logistic_mixture_matches_direct_cdf_differences(channels):
    g = torch.Generator().manual_seed(1)
    lik = LogisticMixture(channels, n_mix=3)
    out = torch.randn(2, lik.n_outputs, 3, 3, generator=g)
    # Moderate scales so float64 CDF differences stay accurate; means spread over [-1, 1].
    out[:, 3:3 + 3 * channels] *= 0.8
    out[:, 3 + 3 * channels:3 + 6 * channels] = out[:, 3 + 3 * channels:3 + 6 * channels] * 0.5 - 2.5
    x = torch.randint(0, 256, (2, channels, 3, 3), generator=g)
    x[0, :, 0, 0], x[0, :, 0, 1], x[1, :, 2, 2] = 0, 255, 1     # edges and next-to-edge bins
    x[1, 0, 1, 1] = 254
    got = lik.log_prob_pixels(out, x).double().numpy()
    want = _direct_mixture_log_prob(out, x, 3)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(lik.log_prob(out, x).double().numpy(), want.sum(axis=(1, 2)), rtol=1e-4)


def test_logistic_mixture_channel_conditionals_telescope_to_joint():
    g = torch.Generator().manual_seed(2)
    lik = LogisticMixture(3, n_mix=4)
    out = torch.randn(3, lik.n_outputs, 2, 2, generator=g)
    x = torch.randint(0, 256, (3, 3, 2, 2), generator=g)
    torch.testing.assert_close(lik.log_prob_channels(out, x).sum(1), lik.log_prob_pixels(out, x), rtol=1e-5,
                               atol=1e-4)


def test_logistic_mixture_joint_over_all_colours_sums_to_one():
    """Sum of p(r, g) over all 256² colours of a two-channel pixel, with a sharp component at an edge."""
    lik = LogisticMixture(2, n_mix=2)
    out = torch.tensor([0.3, -0.2,                 # mixture logits
                        0.99, -0.4, 0.1, 0.7,      # means (channel, component)
                        -6.5, -1.0, -3.0, -2.0,    # log-scales: one very sharp
                        1.5, -0.8])                # coupling coefficients (pair, component)
    vals = torch.arange(256)
    x = torch.stack(torch.meshgrid(vals, vals, indexing="ij"), 0).reshape(2, -1).T.reshape(-1, 2, 1, 1)
    total = lik.log_prob(out.view(1, -1, 1, 1).expand(len(x), -1, 1, 1), x).double().exp().sum()
    assert abs(float(total) - 1.0) < 1e-5


def test_colour_channel_conditionals_sum_to_one_over_256_values():
    """p(x_c | earlier channels) of a three-channel mixture sums to 1 over x_c for fixed earlier channels."""
    g = torch.Generator().manual_seed(6)
    lik = LogisticMixture(3, n_mix=3)
    out = torch.randn(1, lik.n_outputs, 1, 1, generator=g) * 2
    for channel in range(3):
        x = torch.randint(0, 256, (1, 3, 1, 1), generator=g).expand(256, -1, -1, -1).clone()
        x[:, channel] = torch.arange(256).view(256, 1, 1)
        logp = lik.log_prob_channels(out.expand(256, -1, -1, -1), x)[:, channel, 0, 0]
        assert abs(float(torch.logsumexp(logp.double(), 0))) < 1e-5


@pytest.mark.parametrize("lik", [Softmax256(2), LogisticMixture(1, 5)], ids=["softmax", "logistic-grey"])
def test_probabilities_of_all_256_values_sum_to_one(lik):
    g = torch.Generator().manual_seed(3)
    out = torch.randn(1, lik.n_outputs, 1, 1, generator=g) * 3
    x = torch.arange(256).view(256, 1, 1, 1).expand(256, lik.n_channels, 1, 1)
    logp = lik.log_prob_pixels(out.expand(256, -1, 1, 1), x)
    if logp.ndim == 4:                   # softmax: per channel
        logp = logp[:, :, 0, 0].T
    else:
        logp = logp[:, 0, 0][None]
    torch.testing.assert_close(torch.logsumexp(logp.double(), -1), torch.zeros(logp.shape[0], dtype=torch.float64),
                               atol=1e-5, rtol=0)


def test_softmax_matches_log_softmax_gather():
    g = torch.Generator().manual_seed(4)
    lik = Softmax256(1)
    out = torch.randn(2, 256, 3, 3, generator=g)
    x = torch.randint(0, 256, (2, 1, 3, 3), generator=g)
    want = np.log(np.take_along_axis(torch.softmax(out.double(), 1).numpy(), x.numpy(), 1)).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(lik.log_prob(out, x).numpy(), want, rtol=1e-5)


def test_sample_pixel_follows_the_distribution_and_temperature_zero_takes_the_mode():
    g = torch.Generator().manual_seed(5)
    lik = Softmax256(1)
    logits = torch.full((1, 256), -1e4)
    logits[0, [10, 200]] = torch.tensor([0.0, float(np.log(3.0))])
    draws = lik.sample_pixel(logits.expand(4000, -1), 1.0, g)[:, 0]
    assert set(draws.unique().tolist()) == {10, 200}
    assert abs(float((draws == 200).float().mean()) - 0.75) < 0.03
    assert lik.sample_pixel(logits, 0.0)[0, 0] == 200
    mix = LogisticMixture(3, 2)
    out = torch.zeros(1, mix.n_outputs)
    out[0, :2] = torch.tensor([5.0, 0.0])            # component 0 dominates
    out[0, 2:8] = torch.tensor([0.5, -0.9, 0.0, 0.0, -0.2, 0.0])  # means (channel, component)
    out[0, 8:14] = -3.0
    out[0, 14:20] = torch.tensor([3.0, 0.0, 0.0, 0.0, 0.0, 0.0])   # tanh(3) couples green to red
    red = round((0.5 + 1) * 127.5)
    green = round((0.0 + np.tanh(3.0) * (red / 127.5 - 1) + 1) * 127.5)
    blue = round((-0.2 + 1) * 127.5)
    assert mix.sample_pixel(out, 0.0).tolist() == [[red, green, blue]]
    far = mix.sample_pixel(out.expand(2000, -1), 1.0, g).float()
    assert abs(float(far[:, 0].mean()) - red) < 3.0


def test_bad_images_raise():
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        check_images(torch.full((1, 1, 2, 2), 256))
    with pytest.raises(ValueError, match="fractions"):
        check_images(torch.full((1, 1, 2, 2), 0.5))
    with pytest.raises(ValueError, match="channel"):
        check_images(torch.zeros(1, 3, 2, 2, dtype=torch.long), n_channels=1)
    with pytest.raises(ValueError, match="temperature"):
        Softmax256(1).sample_pixel(torch.zeros(1, 256), -1.0)
