"""The dSprites generator: the exact factor grid, geometry checked against closed forms, lazy rendering."""
import math

import numpy as np
import pytest
import torch

import replab.data as D
from replab.data import dsprites
from replab.data._shapes import render_shapes

G = dsprites.GRID


def ids_of(shape=0, scale=5, orient=0, x=16, y=16):
    return int(G.ids_of(torch.tensor([0, shape, scale, orient, x, y])))


def img(**kw):
    return dsprites.render(torch.tensor([ids_of(**kw)]))[0, 0]


def test_factor_grid_is_the_original():
    ds = D.load("dsprites", "all")
    assert len(ds) == 737_280 == 3 * 6 * 40 * 32 * 32
    assert ds.factor_names == ("color", "shape", "scale", "orientation", "posX", "posY")
    expected = [[1.0], [1.0, 2.0, 3.0], np.linspace(0.5, 1, 6), np.linspace(0, 2 * np.pi, 40),
                np.linspace(0, 1, 32), np.linspace(0, 1, 32)]
    for k, values in enumerate(expected):
        assert np.allclose(torch.unique(ds.factors[:, k]).numpy(), values, atol=1e-6)
    # row-major with posY fastest, as latents_classes in the original file
    assert ds.factor_classes[:3].tolist() == [[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 2]]
    assert ds.factor_classes[32].tolist() == [0, 0, 0, 0, 1, 0]
    assert ds.factor_classes[-1].tolist() == [0, 2, 5, 39, 31, 31]
    assert torch.equal(G.ids_of(ds.factor_classes), ds.ids)
    assert torch.bincount(ds.labels).tolist() == [245_760] * 3
    assert ds.factors[:, 3].max().item() == pytest.approx(2 * math.pi)


def test_area_follows_closed_forms_and_scale_squared():
    r = lambda s: 0.2 * s * 64  # radius in pixels  # noqa: E731
    for k, s in [(0, 0.5), (5, 1.0)]:
        sq = img(shape=0, scale=k).double().sum().item() / 255
        el = img(shape=1, scale=k).double().sum().item() / 255
        assert sq == pytest.approx(2 * r(s) ** 2, rel=0.08)        # side sqrt(2)·r
        assert el == pytest.approx(math.pi * 0.5 * r(s) ** 2, rel=0.08)
    for shape in range(3):
        big, small = (img(shape=shape, scale=k).double().sum().item() for k in (5, 0))
        assert big / small == pytest.approx(4.0, rel=0.08)


def test_orientation_and_symmetries():
    # orientation 2π (class 39) is orientation 0, as in the original grid
    for shape in range(3):
        assert torch.equal(img(shape=shape, orient=0), img(shape=shape, orient=39))
    # the heart is left-right symmetric about its axis and not up-down; its lobes are on top
    h = img(shape=2).double()
    cx = 32  # pos class 16 is not exactly the centre, so re-render at the exact centre below
    centre = render_shapes(torch.tensor([2]), torch.tensor([0.5]), torch.tensor([0.5]), torch.tensor([0.2]),
                           torch.tensor([0.0]), (dsprites.square, dsprites.ellipse, dsprites.heart))[0, 0].double()
    assert torch.equal(centre, centre.flip(1))
    assert (centre - centre.flip(0)).abs().sum() > 0.1 * centre.sum()
    assert centre[:cx].sum() > centre[cx:].sum()
    assert h.sum().item() == pytest.approx(centre.sum().item(), rel=0.05)
    # a quarter turn maps the ellipse to its transpose (about the exact canvas centre)
    ell = [render_shapes(torch.tensor([1]), torch.tensor([0.5]), torch.tensor([0.5]), torch.tensor([0.2]),
                         torch.tensor([t]), (dsprites.square, dsprites.ellipse))[0, 0] for t in (0.0, math.pi / 2)]
    assert (ell[0].float() - ell[1].T.float()).abs().sum() <= 255 * 4
    assert (ell[0] > 0).any(0).sum() > 1.8 * (ell[0] > 0).any(1).sum()  # wide, not tall, at orientation 0
    # rotation is counter-clockwise on screen: a thin ellipse turned by 45° rises to the right
    turned = render_shapes(torch.tensor([0]), torch.tensor([0.5]), torch.tensor([0.5]), torch.tensor([0.2]),
                           torch.tensor([math.pi / 4]), (lambda u, v: dsprites.ellipse(u, v, 1.0, 0.15),))[0, 0]
    assert turned[26, 38] > 0 and turned[38, 26] > 0 and turned[38, 38] == 0 and turned[26, 26] == 0


def test_positions_move_the_centroid_linearly_and_stay_inside():
    rows, cols = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    ink0 = img(shape=0, scale=5, orient=5).double().sum()
    for x, y in [(0, 0), (31, 0), (0, 31), (31, 31), (10, 20)]:
        im = img(shape=0, scale=5, orient=5, x=x, y=y).double()
        w = im / im.sum()
        assert (w * cols).sum().item() + 0.5 == pytest.approx(64 * (0.2 + 0.6 * x / 31), abs=0.3)
        assert (w * rows).sum().item() + 0.5 == pytest.approx(64 * (0.2 + 0.6 * y / 31), abs=0.3)
        assert im.sum().item() == pytest.approx(ink0.item(), rel=0.04)  # nothing cut off at the border


def test_lazy_batches_equal_single_renders_and_are_deterministic():
    ds = D.load("dsprites", "train")
    rng = np.random.default_rng(0)
    picks = rng.choice(len(ds), 12, replace=False)
    batch = ds.subset(picks)
    singles = torch.stack([(ds[int(i)][0] * 255).round().to(torch.uint8) for i in picks])
    assert torch.equal(batch.images, singles)
    assert set(torch.unique(batch.images).tolist()) <= {0, 255}
    assert torch.equal(batch.factors, ds.factors[picks])
    ids = ds.ids[picks]
    c, v = G.classes(ids), G.values_of(ids)
    args = (c[:, 1], 0.2 + 0.6 * v[:, 4], 0.2 + 0.6 * v[:, 5], 0.2 * v[:, 2], v[:, 3],
            (dsprites.square, dsprites.ellipse, dsprites.heart))
    assert torch.equal(render_shapes(*args, chunk=5), batch.images)
    assert torch.equal(render_shapes(*args, window=False), batch.images)  # whole-canvas test, same pixels
    assert torch.equal(D.load("dsprites", "train").sample(8, seed=2).images, ds.sample(8, seed=2).images)
    streamed = next(iter(ds.batches(16)))
    assert torch.equal(streamed[0], ds.subset(range(16)).images.float() / 255)
    assert torch.equal(ds.images[torch.from_numpy(picks)], batch.images)
    with pytest.raises(AttributeError, match="sample"):
        ds.images.float()


def test_shapes_are_distinct():
    a, b, c = (img(shape=s, orient=7) for s in range(3))
    for p, q in [(a, b), (a, c), (b, c)]:
        assert (p != q).sum() > 30


def _fake_file(folder, n=40, compressed=True):
    rng = np.random.default_rng(0)
    imgs = (rng.random((n, 64, 64)) > 0.7).astype(np.uint8)
    classes = G.classes(torch.arange(n) * 997).numpy()
    values = G.values_of(torch.arange(n) * 997).numpy()
    save = np.savez_compressed if compressed else np.savez
    save(folder / dsprites.FILE, imgs=imgs, latents_values=values, latents_classes=classes)
    return imgs, values, classes


def test_real_file_streams_in_chunks(tmp_path):
    imgs, _, _ = _fake_file(tmp_path, n=23, compressed=False)
    packed, width = dsprites._read_npy_member_packed(tmp_path / dsprites.FILE, chunk=5)
    assert width == 64 and np.array_equal(np.unpackbits(packed, axis=-1), imgs)


def test_real_file_is_loaded_when_present(tmp_path, monkeypatch):
    imgs, values, classes = _fake_file(tmp_path)
    ds = D.load("dsprites", "all", root=tmp_path)
    assert len(ds) == 40 and ds.images.shape == (40, 1, 64, 64)
    assert torch.equal(ds.images[:, 0], torch.from_numpy(imgs * 255))
    assert torch.allclose(ds.factors.double(), torch.from_numpy(values)) and ds.labels.tolist() == classes[:, 1].tolist()
    te = D.load("dsprites", "test", root=tmp_path)
    assert len(te) == 4 and torch.equal(te.images, ds.subset(te.ids).images)
    monkeypatch.setenv("REPLAB_DATA", str(tmp_path))
    assert len(D.load("dsprites", "all")) == 40
    assert len(D.load("dsprites", "all", source="generator")) == 737_280
    monkeypatch.delenv("REPLAB_DATA")
    with pytest.raises(FileNotFoundError, match=f"{dsprites.FILE}.*{tmp_path.name}"):
        D.load("dsprites", root=tmp_path / "elsewhere", source="file")
    with pytest.raises(ValueError, match="source"):
        D.load("dsprites", source="web")
