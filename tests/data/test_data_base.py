"""The shared dataset type, the split helper and the load() front door."""
import numpy as np
import pytest
import torch

import replab.data as D
from replab.data._base import MAX_MATERIALISE, ImageDataset, LazyImageDataset, resize_area, split_indices


def _toy(n=10):
    images = torch.arange(n * 2 * 3 * 3, dtype=torch.int64).remainder(256).to(torch.uint8).reshape(n, 2, 3, 3)
    return ImageDataset(images, labels=torch.arange(n) % 3, factors=torch.randn(n, 2, generator=torch.Generator().manual_seed(n)), factor_names=("a", "b"))


def test_item_is_float_image_and_target():
    ds = _toy()
    x, y = ds[4]
    assert x.dtype == torch.float32 and x.shape == (2, 3, 3)
    assert torch.equal(x, ds.images[4].float() / 255)
    assert torch.equal(y, ds.factors[4])
    only_labels = ImageDataset(ds.images, labels=ds.labels)
    assert only_labels[4][1].item() == 4 % 3
    assert ImageDataset(ds.images)[0][1].item() == -1
    assert torch.equal(ds[-1][0], ds[9][0]) and torch.equal(ds[torch.tensor(3)][1], ds[3][1])
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False)
    xb, yb = next(iter(loader))
    assert torch.equal(xb, ds.images[:4].float() / 255) and torch.equal(yb, ds.factors[:4])
    with pytest.raises(IndexError):
        ds[10]


def test_bad_construction_is_named():
    imgs = torch.zeros(3, 1, 2, 2, dtype=torch.uint8)
    with pytest.raises(ValueError, match="labels"):
        ImageDataset(imgs, labels=torch.zeros(2))
    with pytest.raises(ValueError, match="factor_names"):
        ImageDataset(imgs, factors=torch.zeros(3, 2), factor_names=("a",))
    with pytest.raises(ValueError, match="images"):
        ImageDataset(torch.zeros(3, 2, 2, dtype=torch.uint8))


def test_subset_sample_and_batches():
    ds = _toy()
    sub = ds.subset([7, 2])
    assert type(sub) is ImageDataset and len(sub) == 2
    assert torch.equal(sub.images[0], ds.images[7]) and sub.labels.tolist() == [7 % 3, 2 % 3]
    assert sub.factor_names == ("a", "b") and torch.equal(sub.factors[1], ds.factors[2])
    a, b, c = ds.sample(4, seed=3), ds.sample(4, seed=3), ds.sample(4, seed=4)
    assert torch.equal(a.images, b.images) and not torch.equal(a.factors, c.factors)
    assert len(set(a.labels.tolist())) >= 1 and len(a) == 4
    with pytest.raises(ValueError, match="n"):
        ds.sample(11)
    with pytest.raises(ValueError, match="indices"):
        ds.subset([10])
    xs = torch.cat([x for x, _ in ds.batches(3)])
    assert torch.equal(xs, ds.images.float() / 255)
    shuffled = torch.cat([t for _, t in ds.batches(4, shuffle=True, seed=1)])
    assert not torch.equal(shuffled, ds.factors) and torch.allclose(shuffled.sum(0), ds.factors.sum(0), atol=1e-5)


def test_lazy_dataset_renders_only_what_is_asked():
    calls = []

    def render(ids):
        calls.append(len(ids))
        return ids.to(torch.uint8).reshape(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()

    ids = torch.arange(5, 5 + MAX_MATERIALISE + 1)
    lazy = LazyImageDataset(render, ids, (1, 2, 2), labels=ids % 2)
    assert len(lazy) == MAX_MATERIALISE + 1 and calls == []
    assert lazy[3][0][0, 0, 0].item() == pytest.approx(8 / 255)
    view = lazy.images
    assert view.shape == (MAX_MATERIALISE + 1, 1, 2, 2) and len(view) == len(lazy) and view.dtype == torch.uint8
    assert view[torch.tensor([2, 0])][:, 0, 0, 0].tolist() == [7, 5] and view[1, 0, 0, 0].item() == 6
    assert view[3:5, 0].shape == (2, 2, 2)
    assert calls[-1] == 2
    with pytest.raises(ValueError, match="sample"):
        np.asarray(view)
    with pytest.raises(ValueError, match="sample"):
        view[:]
    with pytest.raises(AttributeError, match="sample"):
        view.float()
    sub = lazy.subset([0, 1, 2])
    assert isinstance(sub, ImageDataset) and sub.labels.tolist() == [1, 0, 1]
    n_calls = len(calls)
    assert sub.images[:, 0, 0, 0].tolist() == [5, 6, 7] and len(calls) == n_calls + 1
    assert sub.images is sub.images and len(calls) == n_calls + 1  # rendered once, then kept
    mat = sub.materialise()
    assert type(mat) is ImageDataset and torch.equal(mat.images, sub.images) and torch.equal(mat.labels, sub.labels)
    with pytest.raises(ValueError, match="sample"):
        lazy.materialise()
    small = LazyImageDataset(render, torch.arange(4), (1, 2, 2))
    assert small.images[:, 0, 0, 0].tolist() == [0, 1, 2, 3]


def test_split_indices_partition_and_stratify():
    y = np.repeat(np.arange(3), [10, 20, 30])
    tr, te, al = (split_indices(60, s, 0.2, seed=0, stratify=y) for s in ("train", "test", "all"))
    assert len(np.intersect1d(tr, te)) == 0 and np.array_equal(np.union1d(tr, te), al)
    assert np.bincount(y[te]).tolist() == [2, 4, 6]
    assert np.array_equal(te, split_indices(60, "test", 0.2, seed=0, stratify=y))
    assert not np.array_equal(te, split_indices(60, "test", 0.2, seed=1, stratify=y))
    with pytest.raises(ValueError, match="split"):
        split_indices(5, "valid")


def test_resize_area_is_block_mean():
    x = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    expected = x.double().reshape(2, 3, 4, 2, 4, 2).mean((3, 5)).round().to(torch.uint8)
    assert torch.equal(resize_area(x, 4), expected)


def test_load_errors_list_the_choices():
    assert {"mnist10k", "digits", "dsprites", "affmnist", "symsol_like", "mnist", "cifar10", "svhn", "celeba",
            "cars3d", "smallnorb", "symsol", "affnist"} <= set(D.names())
    assert set(D.OFFLINE) <= set(D.names())
    with pytest.raises(ValueError, match="known datasets: affmnist"):
        D.load("imagenet")
    with pytest.raises(ValueError, match="'train', 'test', 'all'"):
        D.load("digits", split="validation")


@pytest.mark.parametrize("name", ["mnist10k", "digits", "dsprites", "affmnist", "symsol_like"])
def test_every_offline_dataset_has_the_shared_type(name):
    ds = D.load(name, "test")
    assert isinstance(ds, ImageDataset)
    small = ds.sample(6, seed=0)
    assert small.images.dtype == torch.uint8 and small.images.ndim == 4
    assert small.labels.dtype == torch.int64 and small.labels.shape == (6,)
    if ds.factors is not None:
        assert small.factors.dtype == torch.float32 and small.factors.shape == (6, len(ds.factor_names))
    assert torch.equal(small.images, ds.sample(6, seed=0).images)
    x, _ = ds[0]
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1 and x.shape == ds.image_shape
    assert len(D.load(name, "train")) + len(ds) == len(D.load(name, "all"))
