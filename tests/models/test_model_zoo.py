"""The model zoo: named representations, shapes, likelihoods, and configuration checks."""
import math

import pytest
import torch
from torch import distributions as D

from replab import models as M
from replab.noise import Dropout
from replab.models.vae import (bernoulli_log_likelihood, gaussian_log_likelihood, reparameterize,
                               same_padding_conv)

SMALL = {
    "conv64": (M.Conv64Config(), (1, 64, 64)),
    "conv64_k4": (M.Conv64Config(kernel_sizes=(4, 4, 4, 4), channels=3), (3, 64, 64)),
    "fc": (M.FCConfig(input_shape=(1, 16, 16), encoder_widths=(32, 32), decoder_widths=(32, 32, 32)),
           (1, 16, 16)),
    "mlp": (M.MLPConfig(), (1, 28, 28)),
    "wae": (M.WAECelebAConfig(widths=(8, 8, 16, 16), latent_dim=6), (3, 64, 64)),
}

CONV64_SHAPES = {
    "input": (1, 64, 64), "encoder.1": (32, 32, 32), "encoder.2": (32, 16, 16), "encoder.3": (64, 8, 8),
    "encoder.4": (64, 4, 4), "encoder.5": (256,), "mean": (10,), "variance": (10,), "sampled": (10,),
    "decoder.1": (256,), "decoder.2": (1024,), "decoder.3": (64, 8, 8), "decoder.4": (32, 16, 16),
    "decoder.5": (32, 32, 32), "output": (1, 64, 64)}
MLP_SHAPES = {"input": (1, 28, 28), "encoder.1": (200,), "encoder.2": (200,), "mean": (30,), "variance": (30,),
              "sampled": (30,), "decoder.1": (200,), "decoder.2": (200,), "output": (1, 28, 28)}

# disentanglement_lib's fc_encoder / fc_decoder on 64×64 (Locatello et al. 2019, Appendix; Bonheme & Grześ App. G)
FC_SHAPES = {"input": (1, 64, 64), "encoder.1": (1200,), "encoder.2": (1200,), "mean": (10,), "variance": (10,),
             "sampled": (10,), "decoder.1": (1200,), "decoder.2": (1200,), "decoder.3": (1200,),
             "output": (1, 64, 64)}
# the WAE CelebA network at its full widths: four 5×5 stride-2 convolutions, 8×8×1024 dense, three deconvolutions
WAE_SHAPES = {"input": (3, 64, 64), "encoder.1": (128, 32, 32), "encoder.2": (256, 16, 16),
              "encoder.3": (512, 8, 8), "encoder.4": (1024 * 4 * 4,), "mean": (64,), "variance": (64,),
              "sampled": (64,), "decoder.1": (1024, 8, 8), "decoder.2": (512, 16, 16), "decoder.3": (256, 32, 32),
              "decoder.4": (128, 64, 64), "output": (3, 64, 64)}
FULL = {"conv64": (M.Conv64Config(), CONV64_SHAPES), "mlp": (M.MLPConfig(), MLP_SHAPES),
        "fc": (M.FCConfig(), FC_SHAPES), "wae": (M.WAECelebAConfig(), WAE_SHAPES)}


def _hooked(model, x, names):
    """Capture module outputs by module path with forward hooks: a second route to the representations."""
    out, handles = {}, []
    modules = dict(model.named_modules())
    for name in names:
        handles.append(modules[name].register_forward_hook(lambda m, i, o, name=name: out.__setitem__(name, o)))
    try:
        mu, logvar = model.encode(x)
        model.decode(mu)
    finally:
        for h in handles:
            h.remove()
    return out


@pytest.mark.parametrize("which", list(FULL))
def test_every_named_layer_has_the_papers_shape(which):
    cfg, expected = FULL[which]
    model = M.build(cfg)
    with torch.no_grad():
        reps = model.representations(torch.rand(2, *expected["input"]), generator=torch.Generator().manual_seed(0))
    assert list(reps) == model.layer_names() == list(expected)
    assert {k: tuple(v.shape[1:]) for k, v in reps.items()} == expected
    if which == "wae":  # output through a sigmoid: the Gaussian mean is a pixel value in [0, 1]
        assert 0.0 <= float(reps["output"].min()) and float(reps["output"].max()) <= 1.0


@pytest.mark.parametrize("which", list(SMALL))
def test_representations_agree_with_hooks_and_forward(which):
    cfg, shape = SMALL[which]
    model = M.build(cfg).eval()
    x = torch.rand(4, *shape)
    reps = model.representations(x, generator=torch.Generator().manual_seed(1))
    assert reps["input"] is x
    names = [n for n in reps if n.startswith(("encoder.", "decoder.")) or n in ("mean", "variance")]
    hooked = _hooked(model, x, names)
    for name in ("mean", "variance") + tuple(n for n in names if n.startswith("encoder.")):
        torch.testing.assert_close(reps[name], hooked[name])
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(reps["sampled"], z)
    torch.testing.assert_close(reps["output"], model.decode(z))
    out = model(x, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out.recon, reps["output"])
    assert out.recon.shape == x.shape
    sub = model.representations(x, names=["mean", "input"])
    assert list(sub) == ["input", "mean"]


def test_conv64_kernel_sizes_follow_the_code_by_default():
    model = M.Conv64VAE()
    kernels = [m.kernel_size for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert kernels == [(4, 4), (4, 4), (2, 2), (2, 2)]
    paper = M.Conv64VAE(M.Conv64Config(kernel_sizes=(4, 4, 4, 4)))
    n_code = sum(p.numel() for p in model.parameters())
    n_paper = sum(p.numel() for p in paper.parameters())
    # the last two convolutions grow from 2×2 to 4×4 kernels: (32·64 + 64·64)·(16 − 4) more weights
    assert n_paper - n_code == (32 * 64 + 64 * 64) * 12


@pytest.mark.parametrize("k", [2, 3, 4, 5])
@pytest.mark.parametrize("n", [8, 16, 64])  # even sides, as every model here has
def test_same_padding_conv_matches_tensorflow_output_size(k, n):
    conv = same_padding_conv(2, 3, k, 2)
    assert conv(torch.zeros(1, 2, n, n)).shape[-1] == math.ceil(n / 2)


def test_likelihoods_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(5, 1, 4, 4, generator=g) > 0.5).float()
    logits = torch.randn(3, 5, 1, 4, 4, generator=g)
    want = D.Bernoulli(logits=logits).log_prob(x).flatten(2).sum(-1)
    torch.testing.assert_close(bernoulli_log_likelihood(logits, x), want)
    torch.testing.assert_close(bernoulli_log_likelihood(logits[0], x), want[0])
    mean = torch.randn(3, 5, 1, 4, 4, generator=g)
    want = D.Normal(mean, math.sqrt(0.3)).log_prob(x).flatten(2).sum(-1)
    torch.testing.assert_close(gaussian_log_likelihood(mean, x, 0.3), want)
    no_const = gaussian_log_likelihood(mean, x, 0.3, constants=False)
    torch.testing.assert_close(no_const, -((x - mean) ** 2).flatten(2).sum(-1) / 0.6)


def test_reparameterize_moments_and_gradients():
    mu = torch.tensor([[1.0, -2.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, math.log(4.0)]], requires_grad=True)
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(0), n_samples=20000)
    assert z.shape == (20000, 1, 2)
    torch.testing.assert_close(z.mean(0), mu.detach(), atol=0.05, rtol=0)
    torch.testing.assert_close(z.var(0), torch.tensor([[1.0, 4.0]]), atol=0.1, rtol=0)
    z.sum().backward()
    assert mu.grad is not None and logvar.grad is not None


def test_classifier_representations():
    cfg = M.VGGConfig(layout=M.vgg_layout(11, 32), n_classes=7)
    assert M.vgg_layout(11, 384)[0] == (48, 1) and M.vgg_layout(11, 512) == M.classifiers.VGG11_LAYOUT
    model = M.build(cfg).eval()
    x = torch.rand(2, 3, 32, 32)
    reps = model.representations(x)
    assert list(reps) == model.layer_names()
    assert reps["output"].shape == (2, 7)
    torch.testing.assert_close(reps["output"], model(x))
    torch.testing.assert_close(reps["conv.1"], model.blocks["1"].conv(x))  # before BatchNorm and ReLU
    assert reps["conv.11"].shape == (2, 32, 4, 4) and reps["conv.11"].min() < 0 <= reps["block.11"].min()
    dlib = M.build(M.DlibClassifierConfig(n_classes=3))
    reps = dlib.representations(torch.rand(2, 1, 64, 64))
    assert list(reps) == ["input"] + [f"encoder.{i}" for i in range(1, 6)] + ["output"]
    assert {k: tuple(v.shape[1:]) for k, v in reps.items()} == {
        **{k: v for k, v in CONV64_SHAPES.items() if k.startswith(("input", "encoder."))}, "output": (3,)}
    drop = M.build(M.VGGConfig(layout=M.vgg_layout(8, 16), dropout=0.2))
    assert any(isinstance(m, Dropout) and m.channelwise and m.p == 0.2 for m in drop.modules())


@pytest.mark.parametrize("make, message", [
    (lambda: M.Conv64Config(image_size=60), "image_size must be a positive multiple of 16"),
    (lambda: M.Conv64Config(kernel_sizes=(4, 4, 2)), "kernel_sizes must be four positive integers"),
    (lambda: M.MLPConfig(hidden=()), "encoder_widths must be a non-empty sequence"),
    (lambda: M.MLPConfig(likelihood="poisson"), "likelihood must be one of"),
    (lambda: M.WAECelebAConfig(kernel_size=4), "kernel_size must be a positive odd integer"),
    (lambda: M.VGGConfig(dropout=1.5), "dropout must be in [0, 1)"),
    (lambda: M.vgg_layout(depth=9), "depth must be one of"),
    (lambda: M.build("conv64"), "config: no model for str"),
])
def test_bad_configuration_raises(make, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        make()


def test_bad_input_raises():
    model = M.build(M.MLPConfig())
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, 1, 28, 28\), got \(2, 784\)"):
        model.representations(torch.rand(2, 784))
    with pytest.raises(ValueError, match="names: unknown layer"):
        model.representations(torch.rand(2, 1, 28, 28), names=["encoder.9"])
