"""Classifier layers, the MSE baseline, the information measures and the training loops."""
import math

import pytest
import torch
import torch.nn.functional as F

from replab.inversion import (LAYERS, Classifier, CrossEntropy, MSEDecoder, PixelCNNpp, accuracy, cross_entropy,
                              fit_classifier, fit_mse_decoder, information_bound, representation_distances,
                              sample_inversions)


@pytest.mark.parametrize("variant,shape,channels,want", [
    ("conv", (1, 28, 28), (32, 32), {"CONV1": (32, 12, 12), "CONV2": (32, 4, 4), "FC3": (256,), "LOGITS": (10,)}),
    ("conv", (3, 32, 32), (64, 128), {"CONV1": (64, 14, 14), "CONV2": (128, 5, 5), "FC3": (256,), "LOGITS": (10,)}),
    ("global_pool", (1, 40, 40), (32, 32), {"CONV1": (32, 18, 18), "CONV2": (32, 7, 7), "FC3": (256,)}),
    ("fc", (1, 40, 40), (32, 32), {"CONV1": (2048,), "CONV2": (2048,), "FC3": (256,), "LOGITS": (10,)}),
])
def test_classifier_layer_shapes(variant, shape, channels, want):
    net = Classifier(image_shape=shape, variant=variant, conv_channels=channels).eval()
    reps = net.representations(torch.randint(0, 256, (2, *shape)), LAYERS)
    for name, s in want.items():
        assert tuple(reps[name].shape) == (2, *s), name
        assert net.shapes[name] == s
    fc3_in = {"conv": math.prod(want["CONV2"]), "global_pool": channels[1], "fc": 2048}[variant]
    assert net.fc3.in_features == fc3_in


def test_representations_are_the_layers_of_forward():
    """A second formulation: the layers rebuilt by hand from the modules' weights."""
    torch.manual_seed(0)
    x = torch.rand(3, 1, 40, 40)
    for variant in ("conv", "global_pool"):
        net = Classifier(image_shape=(1, 40, 40), variant=variant).eval()
        reps = net.representations(x)
        c1 = F.max_pool2d(F.relu(F.conv2d(x, net.layer1.weight, net.layer1.bias)), 2)
        c2 = F.max_pool2d(F.relu(F.conv2d(c1, net.layer2.weight, net.layer2.bias)), 2)
        flat = c2.amax(dim=(2, 3)) if variant == "global_pool" else c2.flatten(1)
        fc3 = F.relu(flat @ net.fc3.weight.T + net.fc3.bias)
        for name, want in (("CONV1", c1), ("CONV2", c2), ("FC3", fc3)):
            torch.testing.assert_close(reps[name], want)
        torch.testing.assert_close(reps["LOGITS"], net(x))
    # 8-bit input is divided by 255
    x8 = torch.randint(0, 256, (2, 1, 40, 40))
    torch.testing.assert_close(net(x8), net(x8.float() / 255))


def test_global_pooling_fc3_ignores_where_the_pattern_is():
    """A pattern away from the borders, moved by a multiple of the total stride (4), gives the same FC3 with
    global pooling but not without it."""
    torch.manual_seed(1)
    patch = torch.rand(1, 1, 4, 4)
    a, b = torch.zeros(1, 1, 40, 40), torch.zeros(1, 1, 40, 40)
    # Rows and columns 12..27 keep every map the pattern touches clear of the valid convolutions' edges.
    a[..., 12:16, 12:16], b[..., 24:28, 20:24] = patch, patch
    pooled = Classifier(image_shape=(1, 40, 40), variant="global_pool").eval()
    plain = Classifier(image_shape=(1, 40, 40), variant="conv").eval()
    torch.testing.assert_close(pooled.representations(a, "FC3")["FC3"], pooled.representations(b, "FC3")["FC3"])
    assert not torch.allclose(plain.representations(a, "FC3")["FC3"], plain.representations(b, "FC3")["FC3"])


def test_classifier_errors():
    with pytest.raises(ValueError, match="variant"):
        Classifier(variant="resnet")
    with pytest.raises(ValueError, match="unknown name"):
        Classifier().representations(torch.zeros(1, 1, 28, 28), ["FC4"])
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, 28, 28\)"):
        Classifier()(torch.zeros(1, 1, 32, 32))


def test_fit_classifier_learns_a_separable_task_and_keeps_snapshots():
    g = torch.Generator().manual_seed(2)
    labels = torch.randint(0, 2, (128,), generator=g)
    images = torch.rand(128, 1, 16, 16, generator=g) * 0.3
    images[labels == 1, :, :8] += 0.6          # class 1: bright top half
    net = Classifier(image_shape=(1, 16, 16), n_classes=2, conv_channels=(4, 4), fc_units=16, dropout=0.0)
    hist = fit_classifier(net, images, labels, n_steps=60, batch_size=32, lr=3e-3, device="cpu",
                          val_images=images, val_labels=labels, eval_every=20, snapshot_steps=(0, 30))
    assert accuracy(net, images, labels) > 0.95
    assert sorted(hist["snapshots"]) == [0, 30]
    first = Classifier(image_shape=(1, 16, 16), n_classes=2, conv_channels=(4, 4), fc_units=16)
    first.load_state_dict(hist["snapshots"][0])
    assert accuracy(first, images, labels) < 0.9


def test_mse_decoder_shapes_and_fit():
    for ctx_shape in ((10,), (4, 3, 3)):
        dec = MSEDecoder(ctx_shape, image_shape=(3, 28, 28), width=8)
        assert dec(torch.randn(2, *ctx_shape)).shape == (2, 3, 28, 28)
    # Eq. 3 recovers images that are a linear function of the code
    g = torch.Generator().manual_seed(3)
    codes = torch.randn(64, 4, generator=g)
    basis = torch.rand(4, 1, 8, 8, generator=g)
    images = (torch.sigmoid(torch.einsum("nk,kchw->nchw", codes, basis)) * 255).round().to(torch.uint8)
    dec = MSEDecoder((4,), image_shape=(1, 8, 8), width=16)
    before = F.mse_loss(dec.reconstruct(codes), images.float() / 255)
    fit_mse_decoder(dec, images, codes, n_steps=150, batch_size=32, lr=3e-3, device="cpu")
    after = F.mse_loss(dec.reconstruct(codes), images.float() / 255)
    assert after < 0.25 * before


def test_cross_entropy_units_and_information_bound():
    torch.manual_seed(4)
    m = PixelCNNpp(image_shape=(1, 4, 4), likelihood="softmax", n_filters=4, n_res=1, dropout=0.0)
    x = torch.randint(0, 256, (5, 1, 4, 4))
    ce = cross_entropy(m, x, device="cpu", batch_size=2)
    with torch.no_grad():
        want = m.eval().nll(x).double()
    assert ce.nats_per_image == pytest.approx(float(want.mean()), rel=1e-6)
    assert ce.stderr_nats == pytest.approx(float(want.std() / math.sqrt(5)), rel=1e-5)
    assert ce.bits_per_dim == pytest.approx(ce.nats_per_image / (16 * math.log(2)))
    assert ce.nce == -ce.nats_per_image
    bound = information_bound(CrossEntropy(100.0, 1.0, 16, 5), CrossEntropy(130.0, 1.0, 16, 5))
    assert bound["mi_nats"] == 30.0 and bound["mi_bits_per_dim"] == pytest.approx(30 / (16 * math.log(2)))
    with pytest.raises(ValueError, match="different sizes"):
        information_bound(CrossEntropy(1.0, 0.0, 16, 5), CrossEntropy(1.0, 0.0, 9, 5))


class _Pixels(torch.nn.Module):
    """A stand-in classifier whose FC3 is the image itself (as floats in [0, 1])."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def extract(self, images, layer, batch_size=0):
        return images.float().flatten(1) / 255


def test_representation_distances_against_brute_force():
    g = torch.Generator().manual_seed(5)
    test = torch.randint(0, 256, (4, 1, 3, 3), generator=g)
    train = torch.randint(0, 256, (7, 1, 3, 3), generator=g)
    samples = torch.randint(0, 256, (4, 3, 1, 3, 3), generator=g)
    out = representation_distances(_Pixels(), "FC3", test, samples, train, batch_size=3, seed=0)
    h, ht, hs = test.flatten(1) / 255, train.flatten(1) / 255, samples.flatten(2) / 255
    nn = [min(float((h[i] - ht[j]).abs().mean()) for j in range(7)) for i in range(4)]
    best = [min(float((h[i] - hs[i, s]).abs().mean()) for s in range(3)) for i in range(4)]
    assert out["1NN"] == pytest.approx(sum(nn) / 4, rel=1e-5)
    assert out["IM-NN"] == pytest.approx(sum(best) / 4, rel=1e-5)
    assert out["IM-NN"] <= out["IM-S"]
    exact = representation_distances(_Pixels(), "FC3", test, test[:, None].expand(-1, 2, -1, -1, -1), test)
    assert exact["1NN"] == exact["IM-S"] == exact["IM-NN"] == 0.0


def test_sample_inversions_shape():
    torch.manual_seed(6)
    m = PixelCNNpp(image_shape=(1, 3, 3), likelihood="softmax", n_filters=4, n_res=1, context_shape=(2,))
    s = sample_inversions(m, torch.randn(2, 2), n_samples=3, device="cpu")
    assert s.shape == (2, 3, 1, 3, 3) and s.dtype == torch.uint8


def test_layer_helpers_wire_the_layer_shapes():
    from replab.inversion import fit_layer_inversion, fit_layer_mse
    torch.manual_seed(7)
    net = Classifier(image_shape=(1, 16, 16), conv_channels=(3, 3), fc_units=6)
    x = torch.randint(0, 256, (4, 1, 16, 16))
    small = {"n_filters": 4, "n_res": 1}
    for layer, shape in (("CONV1", (3, 6, 6)), ("FC3", (6,)), (None, None)):
        m, hist = fit_layer_inversion(net, layer, x, n_steps=1, config=small, batch_size=4, device="cpu")
        assert m.config.context_shape == shape and len(hist["loss"]) == 1
    dec, _ = fit_layer_mse(net, "CONV2", x, n_steps=1, width=4, batch_size=4, device="cpu")
    assert dec.context_shape == (3, 1, 1)
    with pytest.raises(ValueError, match="no layer 'FC4'"):
        fit_layer_inversion(net, "FC4", x, n_steps=1, config=small)
