"""Counter-based noise: a pure function of (seed, step, draw, element), the same under vmap as alone, and
distributed as it claims."""
import numpy as np
import pytest
import torch
from scipy import stats
from torch.func import vmap

from replab import noise as N


def _pcg_reference(x: int) -> int:
    # the published 32-bit PCG hash, in unsigned 32-bit arithmetic (a second formulation)
    state = (x * 747796405 + 2891336453) % 2**32
    word = (((state >> ((state >> 28) + 4)) ^ state) * 277803737) % 2**32
    return ((word >> 22) ^ word) % 2**32


def test_the_hash_matches_its_unsigned_32_bit_definition():
    xs = [0, 1, 2, 12345, 2**31 - 1, 2**31, 2**32 - 1, 0xDEADBEEF]
    got = N.pcg_hash(torch.tensor(xs, dtype=torch.int64)).tolist()
    assert got == [_pcg_reference(x) for x in xs]
    assert all(0 <= v < 2**32 for v in got)


def test_noise_is_a_pure_function_of_seed_step_and_draw():
    a, b = N.HashNoise(N.seed_word(3), 7), N.HashNoise(N.seed_word(3), 7)
    first = a.randn((5, 4))
    assert torch.equal(first, b.randn((5, 4)))
    assert not torch.equal(first, a.randn((5, 4)))  # the next draw of a step differs
    assert not torch.equal(first, N.HashNoise(N.seed_word(3), 8).randn((5, 4)))
    assert not torch.equal(first, N.HashNoise(N.seed_word(4), 7).randn((5, 4)))


def test_under_vmap_each_member_draws_its_solo_noise():
    keys = torch.tensor([N.seed_word(s) for s in range(5)])

    def draw(key):
        g = N.HashNoise(key, 11)
        return g.randn((3, 2)), g.rand((4,)), g.randint(9, (6,))

    stacked = vmap(draw, randomness="error")(keys)
    for i, key in enumerate(keys):
        for got, want, alone in zip(stacked, draw(key), draw(int(key))):
            assert torch.equal(got[i], want) and torch.equal(alone, want)  # tensor and int keys agree


def test_uniforms_and_normals_have_their_distributions():
    u = N.HashNoise(N.seed_word(0), 0).rand((100_000,)).double().numpy()
    assert 0 < u.min() and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    z = N.HashNoise(N.seed_word(1), 0).randn((100_000,)).double().numpy()
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    k = N.HashNoise(N.seed_word(2), 0).randint(5, (50_000,)).numpy()
    counts = np.bincount(k, minlength=5)
    assert k.min() == 0 and k.max() == 4 and stats.chisquare(counts).pvalue > 1e-3


def test_neighbouring_seeds_steps_and_elements_are_uncorrelated():
    base = N.HashNoise(N.seed_word(0), 0).randn((20_000,)).double()
    for other in (N.HashNoise(N.seed_word(1), 0).randn((20_000,)), N.HashNoise(N.seed_word(0), 1).randn((20_000,))):
        r = np.corrcoef(base.numpy(), other.double().numpy())[0, 1]
        assert abs(r) < 0.03  # |r| ~ 1/sqrt(n) = 0.007 for independent draws
    lag = np.corrcoef(base[:-1].numpy(), base[1:].numpy())[0, 1]
    assert abs(lag) < 0.03


def test_library_draws_use_the_noise_they_are_given():
    g = N.HashNoise(5, 2)
    assert torch.equal(N.randn((3,), g), N.HashNoise(5, 2).randn((3,)))
    torch.manual_seed(0)
    want = torch.randn(3)
    torch.manual_seed(0)
    assert torch.equal(N.randn((3,), None), want)
    assert torch.equal(N.rand((3,), torch.Generator().manual_seed(1)), torch.rand(3, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("channelwise", [False, True])
def test_dropout_inside_the_engine_drops_the_right_share_and_keeps_the_mean(channelwise):
    layer = N.Dropout(0.3, channelwise=channelwise).train()
    x = torch.ones(64, 32, 5, 5)
    with N.using(N.HashNoise(9, 0)):
        out = layer(x)
    with N.using(N.HashNoise(9, 0)):
        assert torch.equal(layer(x), out)  # the mask is the step's noise
    dropped = (out == 0).double().mean().item()
    assert abs(dropped - 0.3) < 0.02
    assert torch.allclose(out[out != 0], torch.tensor(1 / 0.7))
    if channelwise:  # whole feature maps are dropped together
        per_map = (out == 0).flatten(2).double().mean(-1)
        assert set(per_map.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(layer.eval()(x), x)


def test_dropout_outside_the_engine_is_torchs_own():
    x = torch.ones(8, 4, 3, 3)
    torch.manual_seed(4)
    want = torch.nn.functional.dropout2d(x, 0.5, training=True)
    torch.manual_seed(4)
    assert torch.equal(N.Dropout(0.5, channelwise=True).train()(x), want)
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\)"):
        N.Dropout(1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_noise_is_the_same_on_a_gpu():
    cpu = N.HashNoise(N.seed_word(2), 3).rand((1000,))
    gpu = N.HashNoise(torch.tensor(N.seed_word(2), device="cuda"), 3).rand((1000,))
    assert torch.equal(cpu, gpu.cpu())


def test_every_bit_pattern_gives_a_uniform_strictly_inside_the_unit_interval_and_a_finite_normal():
    # the extreme patterns: with 24 bits, the largest would round to 1.0 in float32 and its normal to +inf
    bits = torch.tensor([0, 1, 2**9 - 1, 2**9, 2**31, 2**32 - 2**9, 2**32 - 2, 2**32 - 1], dtype=torch.int64)
    u = N.unit_interval(bits)
    assert u.dtype == torch.float32 and bool(((u > 0) & (u < 1)).all())
    assert u.min().item() == 2.0 ** -24 and u.max().item() == 1 - 2.0 ** -24
    z = torch.special.ndtri(u)
    assert torch.isfinite(z).all() and z.abs().max() < 5.4
    k = torch.tensor([0, 1, 2, 2**22, 2**22 - 1, 2**23 - 3, 2**23 - 2, 2**23 - 1], dtype=torch.int64)
    cells = N.unit_interval(k << 9)
    assert torch.equal(cells, 1 - N.unit_interval((2**23 - 1 - k) << 9))  # symmetric cells: mean zero exactly
