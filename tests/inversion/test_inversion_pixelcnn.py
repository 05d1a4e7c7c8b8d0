"""The conditional PixelCNN++: causality, normalisation, conditioning, memorisation, weight norm, validation."""
import pytest
import torch

from replab.inversion import PixelCNNpp, cross_entropy, fit_pixelcnn
from replab.inversion.pixelcnn import WNConv2d


def _model(likelihood="softmax", channels=1, context_shape=None, size=8, **kw):
    torch.manual_seed(0)
    kw = {"n_filters": 8, "n_res": 1, "n_mix": 2, "dropout": 0.0, **kw}
    return PixelCNNpp(image_shape=(channels, size, size), likelihood=likelihood, context_shape=context_shape, **kw)


CASES = [("softmax", 1, (5,)), ("softmax", 1, (2, 3, 3)), ("logistic", 3, (2, 3, 3)), ("logistic", 3, None)]


@pytest.mark.parametrize("likelihood,channels,context_shape", CASES)
def test_outputs_at_a_pixel_depend_on_exactly_the_pixels_before_it(likelihood, channels, context_shape):
    """Gradient oracle: the parameters at (i, j) have zero gradient w.r.t. pixels at or after (i, j) in raster
    order (all channels), and non-zero gradient w.r.t. every pixel before it (no blind spot)."""
    m = _model(likelihood, channels, context_shape, size=7)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (1, channels, 7, 7), generator=g)
    ctx = None if context_shape is None else torch.randn(1, *context_shape, generator=g)
    m.initialize(x, ctx).eval()
    xf = (x.float() / 127.5 - 1).requires_grad_(True)
    out = m(xf, ctx)
    order = torch.arange(49).view(7, 7)
    for i, j in [(0, 0), (0, 3), (3, 0), (3, 4), (6, 6)]:
        (grad,) = torch.autograd.grad(out[0, :, i, j].square().sum(), xf, retain_graph=True)
        seen = grad[0].abs().sum(0) > 0
        assert torch.equal(seen, order < i * 7 + j), f"pixel ({i}, {j}) sees the wrong pixels:\n{seen.int()}"


@pytest.mark.parametrize("likelihood,channels,context_shape", CASES[1:3])
def test_likelihood_of_a_subpixel_ignores_later_subpixels(likelihood, channels, context_shape):
    """Perturbation oracle in raster and channel order: changing sub-pixel (c, i, j) leaves every conditional
    log p(x_c' | ...) before it unchanged, and changes its own."""
    m = _model(likelihood, channels, context_shape)
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (2, channels, 8, 8), generator=g)
    ctx = torch.randn(2, *context_shape, generator=g)
    m.initialize(x, ctx).eval()

    def per_subpixel(images):
        with torch.no_grad():
            out = m(images, ctx)
        if likelihood == "softmax":
            return m.likelihood.log_prob_pixels(out, images)
        return m.likelihood.log_prob_channels(out, images)

    base = per_subpixel(x)
    rank = (torch.arange(64).view(1, 8, 8) * channels + torch.arange(channels).view(-1, 1, 1))  # (C, H, W)
    for c, i, j in [(0, 2, 5), (channels - 1, 5, 1), (channels // 2, 7, 7)]:
        x2 = x.clone()
        x2[:, c, i, j] = (x2[:, c, i, j] + 97) % 256
        diff = (per_subpixel(x2) - base).abs().amax(0)
        before = rank < rank[c, i, j]
        assert float(diff[before].max()) == 0.0
        assert float(diff[c, i, j]) > 0.0


@pytest.mark.parametrize("likelihood", ["softmax", "logistic"])
def test_model_probabilities_over_all_values_of_a_pixel_sum_to_one(likelihood):
    """Whole-model check on a grey pixel: the 256 images that differ only at (4, 5) get conditionals that sum to
    1 there (a leak from the pixel into its own parameters would break this)."""
    m = _model(likelihood, 1, (3,))
    x = torch.randint(0, 256, (1, 1, 8, 8), generator=torch.Generator().manual_seed(3)).expand(256, -1, -1, -1)
    x = x.clone()
    x[:, 0, 4, 5] = torch.arange(256)
    ctx = torch.randn(1, 3).expand(256, -1)
    m.initialize(x[:16], ctx[:16]).eval()
    with torch.no_grad():
        logp = m.likelihood.log_prob_pixels(m(x, ctx), x)
    logp = logp[:, 0, 4, 5] if likelihood == "softmax" else logp[:, 4, 5]
    assert abs(float(torch.logsumexp(logp.double(), 0))) < 1e-5


@pytest.mark.parametrize("context_shape", [(5,), (2, 3, 3)])
def test_every_residual_layer_receives_a_context_bias(context_shape):
    """Appendix A: the context is projected to a bias added in every residual layer; a vector gives one bias per
    channel, a spatial map (resized to each resolution, 1×1 convolutions) a bias that varies over space."""
    from replab.inversion.pixelcnn import GatedResidual
    m = _model("softmax", 1, context_shape, n_res=2)
    g = torch.Generator().manual_seed(11)
    x = torch.randint(0, 256, (2, 1, 8, 8), generator=g)
    ctx = torch.randn(2, *context_shape, generator=g)
    m.initialize(x, ctx).eval()
    seen = []

    def hook(module, args, kwargs):
        seen.append((args[0].shape[2:], kwargs.get("bias")))

    handles = [mod.register_forward_pre_hook(hook, with_kwargs=True) for mod in m.modules()
               if isinstance(mod, GatedResidual)]
    with torch.no_grad():
        out = m(x, ctx)
    for h in handles:
        h.remove()
    n_layers = sum(isinstance(mod, GatedResidual) for mod in m.modules())
    # two streams; up blocks of n_res = 2 layers, down blocks of 2, 3, 3 (PixelCNN++)
    assert n_layers == 2 * (3 * 2 + 2 + 3 + 3) == len(seen)
    for size, bias in seen:
        assert bias is not None and bias.shape[:2] == (2, 2 * 8)
        if len(context_shape) == 1:
            assert bias.shape[2:] == (1, 1)
        else:
            assert tuple(bias.shape[2:]) == tuple(size)
            assert float(bias.flatten(2).std(-1).min()) > 0           # varies over space
    # A different context changes the outputs everywhere, including the first pixel, which sees no pixel.
    with torch.no_grad():
        other = m(x, torch.randn(2, *context_shape, generator=g))
    assert float((other - out)[:, :, 0, 0].abs().min(dim=1).values.max()) > 0


def test_context_dropout_acts_on_the_projected_biases_in_training_only():
    m = _model("softmax", 1, (5,), context_dropout=0.5)
    ctx = torch.randn(64, 5, generator=torch.Generator().manual_seed(12))
    m.train()
    zeros = torch.cat([b.flatten() for level in m.context_biases(ctx) for b in level]) == 0
    assert 0.4 < float(zeros.float().mean()) < 0.6
    m.eval()
    assert not any(bool((b == 0).any()) for level in m.context_biases(ctx) for b in level)


def test_row_cropped_forward_equals_full_forward():
    m = _model("logistic", 3, (2, 4, 4))
    g = torch.Generator().manual_seed(4)
    x = torch.randint(0, 256, (2, 3, 8, 8), generator=g)
    ctx = torch.randn(2, 2, 4, 4, generator=g)
    m.initialize(x, ctx).eval()
    with torch.no_grad():
        full = m(x, ctx)
        for rows in (1, 4, 5):
            torch.testing.assert_close(m(x[:, :, :rows], ctx), full[:, :, :rows])


def test_conditioning_on_the_image_itself_beats_no_conditioning():
    """Given the image as a spatial context, a short training must reach a far lower test NLL than an
    unconditional model of the same size. Pixels are independent fair coins in {0, 255}, so the best an
    unconditional model can do is 64 log 2 = 44.4 nats per image, and a model that copies its context 0.
    Both keep their best weights on held-out images: at this learning rate the last update's test NLL jumps
    between 0 and 78 nats with the rounding of the kernels (one or two threads, portable or native, fused
    optimiser or not), while the best-validated model is below 1 nat in all of them."""
    g = torch.Generator().manual_seed(5)
    train = 255 * torch.randint(0, 2, (64, 1, 8, 8), generator=g)
    test = 255 * torch.randint(0, 2, (16, 1, 8, 8), generator=g)
    val = 255 * torch.randint(0, 2, (16, 1, 8, 8), generator=g)
    ctx = lambda im: im.float() / 127.5 - 1  # noqa: E731
    h = {}
    for name, shape in (("cond", (1, 8, 8)), ("uncond", None)):
        m = _model("softmax", 1, shape)
        context = (lambda im: None) if shape is None else ctx
        fit_pixelcnn(m, train, context(train), n_steps=150, batch_size=16, lr=1e-2, lr_decay=1.0, device="cpu",
                     val_images=val, val_context=context(val), eval_every=10)
        h[name] = cross_entropy(m, test, context(test), device="cpu").nats_per_image
    assert h["uncond"] > 64 * 0.69
    assert h["cond"] < 0.5 * h["uncond"]


def test_low_temperature_sampling_reproduces_a_memorised_image():
    g = torch.Generator().manual_seed(6)
    image = torch.randint(0, 256, (1, 1, 6, 6), generator=g)
    image[..., 2:4, :] = 255 * (image[..., 2:4, :] > 127)          # some values at the edges 0 and 255
    m = _model("softmax", 1, None, size=6)
    fit_pixelcnn(m, image.expand(8, -1, -1, -1), n_steps=150, batch_size=8, lr=1e-2, lr_decay=1.0, device="cpu")
    assert torch.equal(m.sample(2, temperature=0.0, device="cpu").long(), image.expand(2, -1, -1, -1))
    assert torch.equal(m.sample(2, temperature=0.05, seed=1, device="cpu").long(), image.expand(2, -1, -1, -1))
    assert not torch.equal(m.sample(2, temperature=50.0, seed=1, device="cpu").long(), image.expand(2, -1, -1, -1))


def test_sampling_is_seeded_and_one_sample_per_context():
    m = _model("logistic", 3, (3,), size=4)
    ctx = torch.randn(3, 3, generator=torch.Generator().manual_seed(7))
    m.initialize(torch.randint(0, 256, (3, 3, 4, 4)), ctx)
    a = m.sample(context=ctx, seed=3, device="cpu")
    assert a.shape == (3, 3, 4, 4) and a.dtype == torch.uint8
    assert torch.equal(a, m.sample(context=ctx, seed=3, device="cpu"))
    assert not torch.equal(a, m.sample(context=ctx, seed=4, device="cpu"))
    assert m.training                   # sampling restores the mode it found


def test_weight_norm_and_data_dependent_initialisation():
    torch.manual_seed(8)
    conv = WNConv2d(3, 5, (3, 3))
    w = conv.weight()
    torch.testing.assert_close(w.flatten(1).norm(dim=1), conv.g.detach())
    x = torch.randn(64, 3, 6, 6) * 4 + 2
    with torch.no_grad():
        conv.bias.normal_()                     # the initialisation must not depend on an earlier bias
    conv._data_init = True
    conv(x)
    with torch.no_grad():
        y = conv(x)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(5), atol=1e-4, rtol=0)
    torch.testing.assert_close(y.std(dim=(0, 2, 3)), torch.ones(5), atol=1e-3, rtol=0)


def test_bad_inputs_raise():
    m = _model("softmax", 1, (3,))
    x = torch.zeros(2, 1, 8, 8, dtype=torch.long)
    with pytest.raises(ValueError, match="context"):
        m.log_prob(x)
    with pytest.raises(ValueError, match=r"context: expected shape \(2, 3\)"):
        m.log_prob(x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="size"):
        m.log_prob(torch.zeros(2, 1, 6, 8, dtype=torch.long), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="likelihood"):
        PixelCNNpp(likelihood="gaussian")
    with pytest.raises(ValueError, match="dropout"):
        PixelCNNpp(dropout=1.0)
    with pytest.raises(ValueError, match="unconditional"):
        _model("softmax", 1, None).log_prob(x, torch.zeros(2, 3))
