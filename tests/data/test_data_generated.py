"""symsol_like (a second shapes family on dSprites' canvas) and affMNIST (affine-warped MNIST-10k digits)."""
import numpy as np
import pytest
import torch

import replab.data as D
from replab.data import affmnist, mnist10k, symsol_like
from replab.data._shapes import render_shapes


def _ss(shape, scale=5, orient=0, x=16, y=16):
    cls = torch.tensor([shape, scale, orient, x, y])
    return symsol_like.render(symsol_like.GRID.ids_of(cls).reshape(1))[0, 0]


def test_symsol_like_grid_and_labels():
    ds = D.load("symsol_like", "all")
    assert len(ds) == 5 * 6 * 40 * 32 * 32
    assert ds.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert torch.equal(ds.labels, ds.factors[:, 0].long())
    assert torch.bincount(ds.labels).tolist() == [len(ds) // 5] * 5
    assert np.allclose(torch.unique(ds.factors[:, 1]).numpy(), np.linspace(0.5, 1, 6))
    small = ds.sample(10, seed=0)
    assert small.images.shape == (10, 1, 64, 64) and set(torch.unique(small.images).tolist()) <= {0, 255}
    assert torch.equal(small.images, symsol_like.render(ds.ids[np.sort(np.random.default_rng(0).permutation(len(ds))[:10])]))


def test_symsol_like_window_rendering_equals_whole_canvas():
    ids = torch.from_numpy(np.random.default_rng(1).choice(len(symsol_like.GRID), 40, replace=False))
    c, v = symsol_like.GRID.classes(ids), symsol_like.GRID.values_of(ids)
    args = (c[:, 0], 0.2 + 0.6 * v[:, 3], 0.2 + 0.6 * v[:, 4], 0.2 * v[:, 1], v[:, 2], symsol_like.SHAPES)
    assert torch.equal(render_shapes(*args, window=False), symsol_like.render(ids))


def test_symsol_like_shapes_are_distinct_scale_and_stay_inside():
    imgs = [_ss(k, orient=3) for k in range(5)]
    for i in range(5):
        assert imgs[i].sum() > 0
        for j in range(i):
            assert (imgs[i] != imgs[j]).sum() > 40, (i, j)
    for k in range(5):
        big, small = _ss(k, scale=5).double().sum().item(), _ss(k, scale=0).double().sum().item()
        assert big / small == pytest.approx(4.0, rel=0.15)
        ink = _ss(k, orient=9).double().sum().item()
        for x, y in [(0, 0), (31, 31), (0, 31)]:
            assert _ss(k, orient=9, x=x, y=y).double().sum().item() == pytest.approx(ink, rel=0.06)


def test_affmnist_is_deterministic_per_seed():
    a, b, c = D.load("affmnist", "test"), D.load("affmnist", "test"), D.load("affmnist", "test", seed=1)
    assert torch.equal(a.images, b.images) and torch.equal(a.factors, b.factors)
    assert not torch.equal(a.factors, c.factors) and torch.equal(a.labels, c.labels)
    assert a.images.shape == (2000, 1, 40, 40) and a.images.dtype == torch.uint8
    assert a.factor_names == ("rotation", "shear", "scale", "translate_x", "translate_y")
    _, labels = mnist10k.arrays("test")
    assert a.labels.tolist() == labels.tolist()
    full = D.load("affmnist", "all")
    with np.load(mnist10k.locate()) as f:
        assert torch.equal(full.factors[torch.from_numpy(f["is_test"])], a.factors)


def test_affmnist_parameter_ranges_and_no_clipping():
    ds = D.load("affmnist", "test")
    f = ds.factors
    assert f[:, 0].abs().max() <= 20 and f[:, 0].abs().max() > 19
    assert f[:, 1].abs().max() <= 0.2 and f[:, 2].min() >= 0.8 and f[:, 2].max() <= 1.2
    assert f[:, 3].std() > 2 and f[:, 4].std() > 2
    digits, _ = mnist10k.arrays("test")
    ink_in = torch.from_numpy(digits).double().sum((1, 2)) * f[:, 2].double() ** 2  # area scales by det A = s²
    ink_out = ds.images.double().sum((1, 2, 3))
    rel = (ink_out / ink_in - 1).abs()
    assert rel.max() < 0.05 and rel.mean() < 0.01  # the whole digit stays on the canvas (bilinear blur aside)
    corners = torch.einsum("bij,bkj->bki", affmnist.linear_maps(f[:, 0], f[:, 1], f[:, 2]),
                           torch.from_numpy(affmnist._ink_box(digits))) + f[:, None, 3:5].double()
    assert corners.abs().max() <= 20 + 1e-4
    # the ink centroid follows the translation, up to the digit's own off-centre mass
    cols = torch.arange(40.0) + 0.5 - 20
    cx = (ds.images.double()[:, 0].sum(1) * cols).sum(1) / ink_out
    assert torch.corrcoef(torch.stack([cx, f[:, 3].double()]))[0, 1] > 0.9


def test_affmnist_transform_against_exact_pixel_maps():
    digits, _ = mnist10k.arrays("test")
    d = digits[:3]
    pad = np.zeros((3, 40, 40), np.uint8)
    pad[:, 6:34, 6:34] = d
    identity = affmnist.transform(d, torch.tensor([[0.0, 0, 1, 0, 0]] * 3))
    assert np.array_equal(identity[:, 0].numpy(), pad)
    quarter = affmnist.transform(d, torch.tensor([[90.0, 0, 1, 0, 0]] * 3))
    assert np.array_equal(quarter[:, 0].numpy(), np.rot90(pad, -1, axes=(1, 2)))  # clockwise on screen
    shifted = affmnist.transform(d, torch.tensor([[0.0, 0, 1, 3, -2]] * 3))
    assert np.array_equal(shifted[:, 0].numpy(), np.roll(pad, (-2, 3), axis=(1, 2)))
    # shear 2: row r (centre y = r + 0.5 - 20) slides right by 2y, a whole number of pixels, zeros filling in
    sheared = affmnist.transform(d, torch.tensor([[0.0, 2.0, 1, 0, 0]] * 3))[:, 0].numpy()
    for r in range(40):
        shift = int(2 * (r + 0.5 - 20))
        expected = np.zeros((3, 40), np.uint8)
        src = pad[:, r, max(0, -shift):40 - max(0, shift)]
        expected[:, max(0, shift):max(0, shift) + src.shape[1]] = src
        assert np.array_equal(sheared[:, r], expected), r
