"""Kernel fingerprints (Jamroż et al. 2020, Eq. 2) against closed forms, numpy's SVD and explicit stacking."""
import numpy as np
import pytest
import torch
from torch import nn

from replab.fingerprints import (conv_layer_names, fingerprints, kernel_responses, pool_networks, svd_reduce)
from replab.models import VGGConfig, VGGClassifier, vgg_layout


def _known_conv():
    """A 1×1-free 3×3 conv with two known kernels: an all-ones box and a centre tap of −2, plus biases."""
    conv = nn.Conv2d(1, 2, 3, padding=1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = 1.0
        conv.weight[1, 0, 1, 1] = -2.0
        conv.bias.copy_(torch.tensor([0.5, -1.0]))
    return conv


def test_pooled_responses_closed_form():
    # Constant images c on a zero-padded 4×4 grid: the box kernel sums 4 corners·4 + 8 edges·6 + 4 inner·9 cells,
    # i.e. mean (4·4 + 8·6 + 4·9)/16 = 6.25 times c; the centre tap gives −2c. Add the biases.
    conv = _known_conv()
    model = nn.Sequential(conv, nn.BatchNorm2d(2), nn.ReLU())
    c = torch.tensor([1.0, -3.0, 0.25])
    images = c[:, None, None, None].expand(3, 1, 4, 4).contiguous()
    r = kernel_responses(model, images)["0"]
    expected = torch.stack([6.25 * c + 0.5, -2.0 * c - 1.0], dim=1).double()
    assert r.shape == (3, 2)
    torch.testing.assert_close(r, expected, rtol=1e-6, atol=1e-6)


def test_hook_is_before_batchnorm_and_relu():
    torch.manual_seed(0)
    conv = _known_conv()
    bn = nn.BatchNorm2d(2)
    with torch.no_grad():  # a BatchNorm far from the identity, so reading after it would differ
        bn.running_mean.fill_(3.0)
        bn.running_var.fill_(9.0)
        bn.weight.fill_(2.0)
    model = nn.Sequential(conv, bn, nn.ReLU())
    images = torch.randn(5, 1, 6, 6)
    r = kernel_responses(model, images)["0"]
    assert (r < 0).any(), "responses after ReLU could not be negative"
    torch.testing.assert_close(r, conv(images).mean((2, 3)).double(), rtol=1e-5, atol=1e-6)
    assert model.training  # restored after the eval-mode pass


def test_vgg_conv_names_read_the_convolution_output():
    torch.manual_seed(1)
    model = VGGClassifier(VGGConfig(layout=vgg_layout(8, 32), channels=1, image_size=12)).eval()
    names = conv_layer_names(model)
    assert names == [f"conv.{i}" for i in range(1, 9)]
    images = torch.randn(4, 1, 12, 12)
    r = kernel_responses(model, images)
    seen = {}
    handle = model.blocks["3"].conv.register_forward_hook(lambda m, i, o: seen.setdefault("o", o))
    with torch.no_grad():
        model(images)
    handle.remove()
    torch.testing.assert_close(r["conv.3"], seen["o"].mean((2, 3)).double(), rtol=1e-5, atol=1e-6)
    assert r["conv.1"].shape == (4, 4) and r["conv.8"].shape == (4, 32)


def test_pool_networks_stacks_kernels_as_rows():
    a = torch.arange(6.0).reshape(3, 2)        # 3 images, 2 kernels
    b = 100 + torch.arange(9.0).reshape(3, 3)  # 3 images, 3 kernels
    x = pool_networks([a, b])
    assert x.shape == (5, 3)
    torch.testing.assert_close(x[0], a[:, 0].double())
    torch.testing.assert_close(x[1], a[:, 1].double())
    torch.testing.assert_close(x[4], b[:, 2].double())
    with pytest.raises(ValueError, match="same 3 images"):
        pool_networks([a, torch.zeros(4, 2)])
    with pytest.raises(ValueError, match="at least one"):
        pool_networks([])


@pytest.mark.parametrize("center", [False, True])
def test_svd_reduce_matches_numpy_projection(center):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 15)) + 2.0
    ref = x - x.mean(0) if center else x
    _, _, vt = np.linalg.svd(ref, full_matrices=False)
    want = ref @ vt[:4].T
    got = svd_reduce(torch.as_tensor(x), 4, center=center).numpy()
    signs = np.sign((got * want).sum(0))  # each singular vector is defined up to its sign
    np.testing.assert_allclose(got * signs, want, rtol=1e-8, atol=1e-8)


def test_svd_reduce_uncentred_differs_from_pca_and_keeps_norms_at_full_rank():
    rng = np.random.default_rng(1)
    x = torch.as_tensor(rng.normal(size=(30, 6)) + 5.0)
    full = svd_reduce(x, 6)
    torch.testing.assert_close(full.norm(dim=1), x.norm(dim=1))  # an orthogonal change of basis
    assert not torch.allclose(svd_reduce(x, 2).abs(), svd_reduce(x, 2, center=True).abs(), atol=1e-3)


def test_svd_reduce_rejects_bad_input():
    x = torch.randn(5, 3)
    with pytest.raises(ValueError, match=r"d: expected an integer in \[1, min\(K, M\) = 3\]"):
        svd_reduce(x, 4)
    with pytest.raises(ValueError, match="NaN"):
        svd_reduce(torch.tensor([[float("nan"), 1.0], [0.0, 1.0]]), 1)
    with pytest.raises(ValueError, match="matrix"):
        svd_reduce(torch.randn(3), 1)


def test_fingerprints_pool_seeds_and_reduce_per_layer():
    torch.manual_seed(2)
    cfg = VGGConfig(layout=((3, 1), (5, 2)), channels=1, image_size=8)
    nets = [VGGClassifier(cfg).eval() for _ in range(3)]
    images = torch.randn(10, 1, 8, 8)
    fp = fingerprints(nets, images, d={"conv.1": 2, "conv.2": 4})
    assert fp["conv.1"].shape == (9, 2) and fp["conv.2"].shape == (15, 4)
    raw = pool_networks([kernel_responses(n, images)["conv.2"] for n in nets])
    torch.testing.assert_close(fp["conv.2"].abs(), svd_reduce(raw, 4).abs())
    # same d everywhere when an integer is given; same inputs, same numbers
    again = fingerprints(nets, images, d=2)
    torch.testing.assert_close(again["conv.1"], fp["conv.1"])


def test_kernel_responses_rejects_bad_images():
    model = nn.Sequential(nn.Conv2d(1, 2, 3))
    with pytest.raises(ValueError, match=r"images: expected a tensor of shape \(M, C, H, W\)"):
        kernel_responses(model, torch.zeros(3, 5, 5))
    with pytest.raises(ValueError, match="no convolution"):
        conv_layer_names(nn.Sequential(nn.Linear(2, 2)))
