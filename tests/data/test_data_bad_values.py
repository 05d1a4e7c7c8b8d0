"""Well-formed files holding wrong values: wrong dtypes, values and labels out of range, split membership.

Every one is refused with a DatasetError naming the dataset, the file and the problem; nothing is wrapped,
clipped, folded or padded. Values that are legitimate in a format (SVHN's label 10, floats in [0, 1]) load exactly.
"""
import numpy as np
import pytest
import torch
from PIL import Image

import replab.data as D
from format_writers import (NORB_I4, write_cars3d, write_celeba, write_cifar, write_dsprites, write_mnist,
                            write_mnist10k, write_smallnorb, write_svhn, write_symsol)
from replab.data import ImageDataset
from replab.data._base import split_indices

RNG = np.random.default_rng(1)
IMAGES_28 = RNG.integers(0, 256, (4, 28, 28))


def _refused(name, root, path, *messages, **kwargs):
    """Loading ``name`` from ``root`` raises a DatasetError naming the dataset, ``path`` and each message."""
    with pytest.raises(D.DatasetError) as err:
        D.load(name, root=root, **kwargs)
    text = str(err.value)
    assert text.startswith(f"{name}: {path}: "), text
    for message in messages:
        assert message in text, text
    return err.value


# -- pixel values -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.int16, np.int32])
def test_mnist_images_outside_a_byte_are_refused_not_wrapped(tmp_path, dtype):
    images = IMAGES_28.astype(dtype)
    images[1, 3, 4] = 1000                                   # 1000 as uint8 would be 232
    paths = write_mnist(tmp_path, images=images)
    _refused("mnist", tmp_path, paths["train-images"], f"images: {np.dtype(dtype)} values from 0 to 1000",
             "outside are refused, not wrapped or clipped")
    images[1, 3, 4] = -3
    write_mnist(tmp_path, images=images)
    _refused("mnist", tmp_path, paths["train-images"], "values from -3 to")


def test_mnist_wider_integer_types_within_a_byte_load_exactly(tmp_path):
    write_mnist(tmp_path, images=IMAGES_28.astype(np.int16))
    assert torch.equal(D.load("mnist", root=tmp_path).images[:, 0], torch.from_numpy(IMAGES_28).to(torch.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_images_in_the_unit_interval_are_scaled_not_zeroed(tmp_path, dtype):
    floats = (IMAGES_28 / 255.0).astype(dtype)              # casting these to uint8 would give zeros
    write_mnist(tmp_path, images=floats)
    assert torch.equal(D.load("mnist", root=tmp_path).images[:, 0], torch.from_numpy(IMAGES_28).to(torch.uint8))
    data = (RNG.integers(0, 256, (2, 3072)) / 255.0).astype(dtype)
    write_cifar(tmp_path, data=data)
    got = D.load("cifar10", root=tmp_path).images[:2].reshape(2, -1)
    assert torch.equal(got, torch.from_numpy(np.rint(data.astype(np.float64) * 255).astype(np.uint8)))


@pytest.mark.parametrize("bad, message", [(255.0, "float64 values from 0.0 to 255.0; float images must lie in [0, 1]"),
                                          (np.nan, "NaN or infinite"), (-0.5, "values from -0.5 to")])
def test_float_images_outside_the_unit_interval_are_refused(tmp_path, bad, message):
    floats = IMAGES_28 / 255.0
    floats[0, 0, 0] = bad
    paths = write_mnist(tmp_path, images=floats)
    _refused("mnist", tmp_path, paths["train-images"], message)


def test_cifar_values_outside_a_byte_are_refused_not_wrapped(tmp_path):
    data = RNG.integers(0, 256, (2, 3072)).astype(np.int64)
    data[1, 5] = 300                                         # 300 as uint8 would be 44
    paths = write_cifar(tmp_path, data=data)
    _refused("cifar10", tmp_path, paths["data_batch_1"], "data: int64 values from 0 to 300")
    data[1, 5] = 200
    write_cifar(tmp_path, data=data)
    assert D.load("cifar10", root=tmp_path).images[1].reshape(-1)[5].item() == 200


@pytest.mark.parametrize("data, message", [
    (np.zeros((2, 3000), np.uint8), "data: expected shape (N, 3072), got (2, 3000)"),
    (np.zeros((0, 3072), np.uint8), "the batch is empty"),
    (np.array(["a", "b"]), "expected shape (N, 3072)"),
    (np.zeros((2, 3072), bool), "unsupported dtype bool"),
    (np.zeros((2, 3072), np.complex64), "unsupported dtype complex64"),
])
def test_cifar_data_of_another_shape_or_type_is_refused(tmp_path, data, message):
    paths = write_cifar(tmp_path, data=data, labels=[0] * len(data))
    _refused("cifar10", tmp_path, paths["data_batch_1"], message)


def test_svhn_values_outside_a_byte_are_refused_and_unit_floats_scaled(tmp_path):
    X = RNG.integers(0, 256, (32, 32, 3, 4)).astype(np.int16)
    X[0, 0, 0, 2] = 300
    paths = write_svhn(tmp_path, X=X)
    _refused("svhn", tmp_path, paths["train"], "X: int16 values from 0 to 300")
    X[0, 0, 0, 2] = 7
    write_svhn(tmp_path, X=X / 255.0)                        # MATLAB's doubles in [0, 1]
    assert torch.equal(D.load("svhn", root=tmp_path).images, torch.from_numpy(X.transpose(3, 2, 0, 1).astype(np.uint8)))


def test_smallnorb_values_outside_a_byte_are_refused(tmp_path):
    dat = RNG.integers(0, 256, (3, 2, 96, 96)).astype(np.int16)
    dat[2, 0, 50, 50] = 1000
    paths = write_smallnorb(tmp_path, dat=dat, dat_magic=0x1E3D4C56)
    _refused("smallnorb", tmp_path, paths["training-dat"], "dat: int16 values from 0 to 1000")


def test_symsol_and_cars3d_values_outside_a_byte_are_refused(tmp_path):
    images = RNG.integers(0, 256, (20, 64, 64)).astype(np.int32)
    images[3, 1, 1] = 256
    paths = write_symsol(tmp_path, images=images)
    _refused("symsol", tmp_path, paths["npz"], "images: int32 values from 0 to 256")
    paths = write_symsol(tmp_path, images=images / 255.0 * 255.0)   # floats in 0..255
    _refused("symsol", tmp_path, paths["npz"], "float images must lie in [0, 1]")
    im = RNG.integers(0, 256, (8, 8, 3, 6, 2)).astype(np.int16)
    im[0, 0, 0, 0, 0] = -1
    paths = write_cars3d(tmp_path / "cars3d", im=im)
    _refused("cars3d", tmp_path / "cars3d", paths["mat"], "im: int16 values from -1 to")


def test_dsprites_images_must_be_binary(tmp_path):
    imgs = (RNG.random((20, 64, 64)) > 0.7).astype(np.uint8)
    imgs[7, 10, 10] = 2
    paths = write_dsprites(tmp_path, imgs=imgs)
    _refused("dsprites", tmp_path, paths["npz"], "imgs.npy: dSprites images are binary (0 and 1), got values "
                                                  "from 2 to 2")


def test_image_dataset_refuses_values_it_would_wrap():
    with pytest.raises(ValueError, match="images: int16 values from 0 to 1000"):
        ImageDataset(torch.tensor([[[[1000, 0]]]], dtype=torch.int16))
    with pytest.raises(ValueError, match="float images must lie in"):
        ImageDataset(torch.full((1, 1, 2, 2), 255.0))
    scaled = ImageDataset(torch.tensor([[[[0.0, 1.0], [0.5, 0.2]]]]))
    assert scaled.images.dtype == torch.uint8 and scaled.images.reshape(-1).tolist() == [0, 255, 128, 51]


# -- labels -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("labels, message", [
    (np.array([0, 200, 3, 1], np.uint8), "labels: 200 at position 1 is outside 0..9"),
    (np.array([0, -1, 3, 1], np.int8), "labels: -1 at position 1 is outside 0..9"),
    (np.array([0, 1, 3], np.uint8), "labels: 3 for 4 images"),
    (np.array([0, 1.5, 3, 1], np.float32), "fractional"),
    (np.zeros((4, 1), np.uint8), "labels: expected shape (N), got (4, 1)"),
])
def test_mnist_labels_out_of_range_or_count_are_refused(tmp_path, labels, message):
    paths = write_mnist(tmp_path, labels=labels, gz=True)
    _refused("mnist", tmp_path, paths["train-labels"], message)


@pytest.mark.parametrize("labels, message", [
    ([3, 57], "labels: 57 at position 1 is outside 0..9"), ([-1, 0], "-1 at position 0"),
    ([1], "labels: 1 for 2 images"), (["cat", "dog"], "expected integers in 0..9, got dtype |S3"),
    ([1.0, 2.5], "fractional"), ({"a": 1}, "labels: expected shape (N)"),
])
def test_cifar_labels_out_of_range_or_type_are_refused(tmp_path, labels, message):
    paths = write_cifar(tmp_path, labels=labels)
    _refused("cifar10", tmp_path, paths["data_batch_1"], message)


def test_svhn_label_ten_is_zero_and_eleven_is_refused(tmp_path):
    paths = write_svhn(tmp_path, y=np.array([[10], [11], [5], [1]], np.uint8))   # 11 % 10 would be 1
    _refused("svhn", tmp_path, paths["train"], "y: 11 at position 1 is outside 0..10")
    write_svhn(tmp_path, y=np.array([[10], [0], [9.0], [1]]))                     # MATLAB doubles
    assert D.load("svhn", root=tmp_path).labels.tolist() == [0, 0, 9, 1]
    write_svhn(tmp_path, y=np.array([[10], [1], [5]], np.uint8))
    _refused("svhn", tmp_path, paths["train"], "y: 3 for 4 images")
    write_svhn(tmp_path, X=np.zeros((28, 28, 3, 4), np.uint8))
    _refused("svhn", tmp_path, paths["train"], "X: expected shape (32, 32, 3, N), got (28, 28, 3, 4)")
    write_svhn(tmp_path, X=np.zeros((32, 32, 3, 0), np.uint8), y=np.zeros((0, 1), np.uint8))
    _refused("svhn", tmp_path, paths["train"], "X is empty")
    paths = write_cars3d(tmp_path / "cars", im=np.zeros((8, 8, 4, 6, 2), np.uint8))
    _refused("cars3d", tmp_path / "cars", paths["mat"], "im: expected shape (H, W, 3, azimuths, elevations), got (8, 8, 4, 6, 2)",
             split="all")


@pytest.mark.parametrize("edit, file, message", [
    (dict(cat=np.array([0, 7, 1], np.int32)), "training-cat", "cat (category): 7 at position 1 is outside 0..4"),
    (dict(cat=np.array([0, 1], np.int32)), "training-cat", "categories: 2 for 3 images"),
    (dict(info=np.array([[0, 0, 0, 0], [1, 9, 0, 0], [2, 0, 0, 0]], np.int32)), "training-info",
     "info[:, 1] (elevation): 9 at position 1 is outside 0..8"),
    (dict(info=np.array([[0, 0, 3, 0], [1, 0, 0, 0], [2, 0, 0, 0]], np.int32)), "training-info",
     "info[:, 2] (azimuth): 3 is not a multiple of 2"),
    (dict(info=np.array([[0, 0, 36, 0], [1, 0, 0, 0], [2, 0, 0, 0]], np.int32)), "training-info",
     "azimuth): 36 at position 0 is outside 0..34"),
    (dict(info=np.array([[10, 0, 0, 0], [1, 0, 0, 6], [2, 0, 0, 0]], np.int32)), "training-info",
     "info[:, 0] (instance): 10 at position 0"),
    (dict(dat=np.zeros((3, 1, 96, 96), np.uint8)), "training-dat", "dat: expected shape (N, 2, 96, 96)"),
    (dict(dat=np.zeros((0, 2, 96, 96), np.uint8), cat=np.zeros(0, np.int32), info=np.zeros((0, 4), np.int32)),
     "training-dat", "dat is empty"),
])
def test_smallnorb_categories_and_info_out_of_range_are_refused(tmp_path, edit, file, message):
    paths = write_smallnorb(tmp_path, **edit)
    _refused("smallnorb", tmp_path, paths[file], message)


def test_symsol_labels_and_shapes_are_checked(tmp_path):
    paths = write_symsol(tmp_path, labels=np.repeat(np.arange(1, 6), 4))
    _refused("symsol", tmp_path, paths["npz"], "labels: 5 at position 16 is outside 0..4")
    write_symsol(tmp_path, labels=np.arange(19) % 5)
    _refused("symsol", tmp_path, paths["npz"], "labels: 19 for 20 images")
    write_symsol(tmp_path, images=np.zeros((20, 32, 32), np.uint8))
    _refused("symsol", tmp_path, paths["npz"], "images: expected shape (N, 1, 64, 64), got (20, 1, 32, 32)")


@pytest.mark.parametrize("mode, size, message", [("I;16", (64, 64), "a PNG of mode I;16"),
                                                  ("L", (32, 64), "expected shape (64, 64), got (64, 32)")])
def test_symsol_pngs_must_be_8_bit_and_64_square(tmp_path, mode, size, message):
    paths = write_symsol(tmp_path, layout="png")
    Image.new(mode, size).save(paths["png"])
    _refused("symsol", tmp_path, paths["png"], message)


def test_dsprites_factor_classes_and_values_are_checked(tmp_path):
    from replab.data import dsprites

    classes = dsprites.GRID.classes(np.arange(20) * 997).numpy()
    classes[4, 1] = 3                                        # shapes are 0, 1, 2
    paths = write_dsprites(tmp_path, latents_classes=classes)
    _refused("dsprites", tmp_path, paths["npz"], "latents_classes[:, 1] (shape): 3 at position 4 is outside 0..2")
    write_dsprites(tmp_path, latents_classes=classes[:19])
    _refused("dsprites", tmp_path, paths["npz"], "latents_classes: expected shape (20, 6), got (19, 6)")
    values = dsprites.GRID.values_of(np.arange(20) * 997).numpy()
    values[2, 3] = np.nan
    write_dsprites(tmp_path, latents_values=values)
    _refused("dsprites", tmp_path, paths["npz"], "latents_values: expected finite numbers")


def test_mnist10k_copies_in_the_data_root_are_checked(tmp_path):
    paths = write_mnist10k(tmp_path, labels=np.arange(1, 11))
    _refused("mnist10k", tmp_path, paths["npz"], "labels: 10 at position 9 is outside 0..9")
    err = _refused("affmnist", tmp_path, paths["npz"], "labels: 10")
    assert err.dataset == "affmnist"
    write_mnist10k(tmp_path, is_test=np.zeros(10, bool))
    _refused("mnist10k", tmp_path, paths["npz"], "is_test: the test split is empty")


# -- split membership and empty splits ----------------------------------------------------------------------------
def test_celeba_images_missing_from_the_partition_are_refused_not_trained_on(tmp_path):
    paths = write_celeba(tmp_path, partition=(0, 2, 1))     # the fourth image has no partition
    _refused("celeba", tmp_path, paths["partition"], "1 image(s) of", "have no partition, e.g. '000004.jpg'")
    _refused("celeba", tmp_path, paths["partition"], "have no partition", split="test")
    assert len(D.load("celeba", "all", root=tmp_path)) == 4   # "all" needs no partition
    assert len(D.load("celeba", "train", root=tmp_path, limit=3)) == 2
    for limit in (0, True, 2.5):
        with pytest.raises(ValueError, match="limit: expected a positive integer"):
            D.load("celeba", "all", root=tmp_path, limit=limit)


@pytest.mark.parametrize("text, message", [("000001.jpg 0\n000002.jpg 3\n", "line 2: expected '<file name> <0, 1 or 2>'"),
                                           ("000001.jpg\n", "line 1: expected"),
                                           ("000001.jpg 0 extra\n", "line 1: expected")])
def test_celeba_malformed_partition_lines_are_refused(tmp_path, text, message):
    paths = write_celeba(tmp_path)
    paths["partition"].write_text(text)
    _refused("celeba", tmp_path, paths["partition"], message)


def test_celeba_images_smaller_than_the_crop_are_refused_not_padded(tmp_path):
    paths = write_celeba(tmp_path, size=(140, 218))
    _refused("celeba", tmp_path, paths["jpg"], "the image is 140×218 pixels, smaller than the 150×150 centre crop",
             split="all")
    assert len(D.load("celeba", "all", root=write_celeba(tmp_path / "ok", size=(150, 150))["jpg"].parents[1])) == 4


def test_empty_splits_are_refused(tmp_path):
    paths = write_celeba(tmp_path / "celeba", partition=(0, 0, 1, 0))
    _refused("celeba", tmp_path / "celeba", paths["partition"], "the 'test' split is empty: none of the 4 images is "
                                                                 "in partition 2", split="test")
    one = write_celeba(tmp_path / "one", n=1, partition=None)
    _refused("celeba", tmp_path / "one", one["jpg"].parent, "the 'test' split is empty", split="test")
    paths = write_symsol(tmp_path)                          # 4 of each shape: 10% of 4 rounds to 0
    _refused("symsol", tmp_path, paths["npz"], "the 'test' split is empty: test_fraction=0.1 of 20 examples (per class)",
             split="test")
    assert len(D.load("symsol", "test", root=tmp_path, test_fraction=0.25)) == 5
    paths = write_dsprites(tmp_path, n=4)
    _refused("dsprites", tmp_path, paths["npz"], "the 'test' split is empty", split="test")
    cars = write_cars3d(tmp_path / "cars", im=np.zeros((8, 8, 3, 2, 2), np.uint8))
    _refused("cars3d", tmp_path / "cars", cars["mat"].parent, "the 'test' split is empty", split="test")
    paths = write_mnist(tmp_path / "mnist", images=np.zeros((0, 28, 28), np.uint8), labels=np.zeros(0, np.uint8))
    _refused("mnist", tmp_path / "mnist", paths["train-images"], "the image file is empty")
    with pytest.raises(ValueError, match="the 'test' split is empty"):
        D.load("symsol_like", "test", test_fraction=1e-9)


def test_split_fractions_outside_the_open_interval_are_refused():
    for bad in (0, 1, -0.1, 1.5, float("nan"), True, "0.1"):
        with pytest.raises(ValueError, match="test_fraction: expected a number strictly between 0 and 1"):
            split_indices(10, "test", bad)
    with pytest.raises(ValueError, match="no examples"):
        split_indices(0, "all")


def test_missing_entries_are_named(tmp_path):
    from scipy.io import savemat

    paths = write_svhn(tmp_path)
    savemat(paths["train"], {"X": np.zeros((32, 32, 3, 1), np.uint8)})
    _refused("svhn", tmp_path, paths["train"], "the file has no 'y' entry (it holds: X)")
    paths = write_symsol(tmp_path)
    np.savez(paths["npz"], pictures=np.zeros((1, 64, 64), np.uint8))
    _refused("symsol", tmp_path, paths["npz"], "has no 'images' entry (it holds: pictures)")
    paths = write_cifar(tmp_path / "c")
    import pickle
    paths["data_batch_1"].write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}))
    _refused("cifar10", tmp_path / "c", paths["data_batch_1"], "the batch has no 'labels' entry (it holds: b'data')")
    paths["data_batch_1"].write_bytes(pickle.dumps([1, 2]))
    _refused("cifar10", tmp_path / "c", paths["data_batch_1"], "expected a dict with 'data' and 'labels', got a list")
    paths = write_smallnorb(tmp_path / "n")
    paths["training-cat"].write_bytes(paths["training-info"].read_bytes())
    _refused("smallnorb", tmp_path / "n", paths["training-cat"], "cat: expected shape (N), got (3, 4)")
    assert NORB_I4 == 0x1E3D4C54
