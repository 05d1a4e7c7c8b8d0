"""Real-file loaders: tiny files written in each original format into tmp_path, loaded back exactly."""
import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

import replab.data as D

RNG = np.random.default_rng(0)


def _idx(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()


def test_mnist_idx_plain_and_gzip(tmp_path, monkeypatch):
    tr_x, te_x = (RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8) for n in (5, 3))
    tr_y, te_y = np.array([0, 9, 3, 3, 1], np.uint8), np.array([7, 2, 5], np.uint8)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx(tr_x))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx(tr_y))
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(te_x)))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(te_y)))
    tr = D.load("mnist", "train", root=tmp_path)
    assert tr.images.shape == (5, 1, 28, 28) and torch.equal(tr.images[:, 0], torch.from_numpy(tr_x))
    assert tr.labels.tolist() == tr_y.tolist() and tr.labels.dtype == torch.int64
    monkeypatch.setenv("REPLAB_DATA", str(tmp_path))
    al = D.load("mnist", "all")
    assert torch.equal(al.images[5:, 0], torch.from_numpy(te_x)) and al.labels.tolist() == [0, 9, 3, 3, 1, 7, 2, 5]
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x01\x02\x03\x04"))
    with pytest.raises(ValueError, match="not an IDX file"):
        D.load("mnist", "test")


def test_cifar10_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    written = {}
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        data = np.zeros((2, 3072), np.uint8)
        data[:, :1024] = RNG.integers(0, 256, (2, 1024))  # the first 1024 bytes are the red plane, row-major
        labels = RNG.integers(0, 10, 2).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
        written[name] = (data, labels)
    tr = D.load("cifar10", "train", root=tmp_path)
    assert tr.images.shape == (10, 3, 32, 32) and tr.images[:, 1:].sum() == 0
    assert torch.equal(tr.images[2, 0, 1, :5], torch.from_numpy(written["data_batch_2"][0][0, 32:37]))
    assert tr.labels.tolist() == sum((written[f"data_batch_{k}"][1] for k in range(1, 6)), [])
    te = D.load("cifar10", "test", root=tmp_path)
    assert te.labels.tolist() == written["test_batch"][1] and len(D.load("cifar10", "all", root=tmp_path)) == 12


def test_svhn_mat_and_label_ten_is_zero(tmp_path):
    from scipy.io import savemat

    x = RNG.integers(0, 256, (32, 32, 3, 4), dtype=np.uint8)
    savemat(tmp_path / "train_32x32.mat", {"X": x, "y": np.array([[10], [1], [5], [10]], np.uint8)})
    savemat(tmp_path / "test_32x32.mat", {"X": x[..., :1], "y": np.array([[3]], np.uint8)})
    ds = D.load("svhn", "train", root=tmp_path)
    assert ds.labels.tolist() == [0, 1, 5, 0]
    assert ds.images.shape == (4, 3, 32, 32)
    assert ds.images[2, 1, 7, 9].item() == x[7, 9, 1, 2]  # (row, col, channel, example) in the file
    assert len(D.load("svhn", "all", root=tmp_path)) == 5


def test_celeba_centre_crop_and_resize(tmp_path):
    from PIL import Image

    folder = tmp_path / "img_align_celeba"
    folder.mkdir()
    for k in range(3):
        a = np.zeros((218, 178, 3), np.uint8)
        a[...] = (255, 0, 0)                      # red outside the centred 150×150 square
        a[34:184, 14:89] = (0, 200, 0)            # its left half green
        a[34:184, 89:164] = (0, 0, 40 + 60 * k)   # its right half blue
        Image.fromarray(a).save(folder / f"{k + 1:06d}.jpg", quality=100, subsampling=0)
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 2\n000003.jpg 1\n")
    ds = D.load("celeba", "all", root=tmp_path)
    assert ds.images.shape == (3, 3, 64, 64) and ds.labels is None and ds[0][1].item() == -1
    x = ds.images.double()
    assert x[:, 0].max() < 40                                   # no red: the crop is centred and exact
    assert (x[:, 1, 2:62, 2:30] - 200).abs().max() < 20 and x[:, 2, 2:62, 2:30].max() < 20
    assert (x[2, 2, 2:62, 34:62] - 160).abs().max() < 20
    te = D.load("celeba", "test", root=tmp_path)
    assert len(te) == 1 and torch.equal(te.images[0], ds.images[1])
    assert len(D.load("celeba", "train", root=tmp_path, limit=2)) == 1


ATTRIBUTE_NAMES = ("5_o_Clock_Shadow", "Eyeglasses", "Smiling", "Young")


def _celeba_folder(root, n=5, attributes=None, kaggle=False):
    """A CelebA root in the official layout: ``n`` 218×178 JPEGs and, unless ``attributes`` is False, the
    attribute file (image count, names, then one aligned line of 1/-1 per image, as the official file is written)."""
    from PIL import Image

    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    for k in range(n):
        Image.fromarray(np.full((218, 178, 3), 30 * k, np.uint8)).save(folder / f"{k + 1:06d}.jpg")
    table = np.array([[1 if (k >> j) & 1 else -1 for j in range(len(ATTRIBUTE_NAMES))] for k in range(n)])
    if attributes is not False:
        if kaggle:
            lines = ["image_id," + ",".join(ATTRIBUTE_NAMES)]
            lines += [f"{k + 1:06d}.jpg," + ",".join(str(v) for v in row) for k, row in enumerate(table)]
            (root / "list_attr_celeba.csv").write_text("\n".join(lines) + "\n")
        else:
            lines = [str(n), " ".join(ATTRIBUTE_NAMES) + " "]
            lines += [f"{k + 1:06d}.jpg " + " ".join(f"{v:2d}" for v in row) for k, row in enumerate(table)]
            (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return (table > 0).astype(np.int64)


@pytest.mark.parametrize("kaggle", [False, True])
def test_celeba_attributes_follow_the_files(tmp_path, kaggle):
    table = _celeba_folder(tmp_path, 5, kaggle=kaggle)
    (tmp_path / "list_eval_partition.txt").write_text(
        "".join(f"{k + 1:06d}.jpg {p}\n" for k, p in enumerate((0, 2, 1, 2, 0))))
    ds = D.load("celeba", "all", root=tmp_path)
    assert ds.labels is None and ds.attribute_names == ATTRIBUTE_NAMES
    assert ds.attributes.dtype == torch.int64 and ds.attributes.tolist() == table.tolist()
    assert ds[3][1].tolist() == table[3].tolist()  # the item's target is the image's attribute row
    te = D.load("celeba", "test", root=tmp_path)  # images 2 and 4 of the official partition
    assert te.attributes.tolist() == table[[1, 3]].tolist() and torch.equal(te.images, ds.images[[1, 3]])
    sub = ds.sample(3, seed=1)
    rows = [int(np.flatnonzero((ds.images.reshape(5, -1) == im.reshape(1, -1)).all(1))[0]) for im in sub.images]
    assert sub.attributes.tolist() == table[rows].tolist() and sub.attribute_names == ATTRIBUTE_NAMES
    assert D.load("celeba", "all", root=tmp_path, limit=2).attributes.tolist() == table[:2].tolist()


def test_celeba_without_the_attribute_file_is_unlabelled(tmp_path):
    _celeba_folder(tmp_path, 2, attributes=False)
    ds = D.load("celeba", "all", root=tmp_path)
    assert ds.attributes is None and ds.attribute_names == () and ds[1][1].item() == -1


@pytest.mark.parametrize("edit, message", [
    (lambda lines: ["7"] + lines[1:], "the header says 7 images, the file lists 3"),
    (lambda lines: ["three"] + lines[1:], "the first line must be the number of images"),
    (lambda lines: lines[:2] + [lines[2].replace(" 1", " 0", 1).replace("-1", " 0", 1)] + lines[3:],
     "attribute values must be 1 or -1"),
    (lambda lines: lines[:3] + [lines[3].rsplit(" ", 1)[0]] + lines[4:], "the line of '000002.jpg' has 3 values"),
    (lambda lines: ["2"] + lines[1:4], "no attributes for 1 image"),
])
def test_celeba_bad_attribute_files_are_named(tmp_path, edit, message):
    _celeba_folder(tmp_path, 3)
    path = tmp_path / "list_attr_celeba.txt"
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    with pytest.raises(ValueError, match=message):
        D.load("celeba", "all", root=tmp_path)


def test_attribute_tables_are_checked():
    images = np.zeros((3, 1, 2, 2), np.uint8)
    with pytest.raises(ValueError, match=r"attributes: expected shape \(3, n_attributes\)"):
        D.ImageDataset(images, attributes=np.zeros((2, 4)), attribute_names=list("abcd"))
    with pytest.raises(ValueError, match="attributes: expected 0/1 values"):
        D.ImageDataset(images, attributes=-np.ones((3, 1)), attribute_names=["a"])
    with pytest.raises(ValueError, match="attribute_names: expected 1 names"):
        D.ImageDataset(images, attributes=np.ones((3, 1)), attribute_names=["a", "b"])


def test_cars3d_mat_layout_and_resize(tmp_path):
    from scipy.io import savemat

    folder = tmp_path / "cars"
    folder.mkdir()
    ims = []
    for k in range(2):
        im = np.zeros((128, 128, 3, 24, 4), np.uint8)
        im[..., :, :] = (np.arange(24)[:, None] * 4 + np.arange(4)[None, :] + 100 * k).astype(np.uint8)
        im[:64, :, 1] = RNG.integers(0, 256, (64, 128, 24, 4))
        savemat(folder / f"car_{k + 1:03d}_mesh.mat", {"im": im})
        ims.append(im)
    ds = D.load("cars3d", "all", root=tmp_path)
    assert ds.images.shape == (2 * 96, 3, 64, 64) and ds.factor_names == ("elevation", "azimuth", "object")
    for i in [0, 5, 95, 96, 150]:
        el, az, obj = ds.factor_classes[i].tolist()
        assert ds.labels[i] == obj
        assert ds.images[i, 0, 10, 10].item() == az * 4 + el + 100 * obj   # red plane: constant per view
        block = ims[obj][:2, :2, 1, az, el].astype(float).mean()
        assert abs(ds.images[i, 1, 0, 0].item() - block) <= 0.5  # a 2×2 block mean
    assert sorted(ds.factor_classes[:, 0].tolist()) == sorted(list(range(4)) * 48)
    te = D.load("cars3d", "test", root=tmp_path)
    tr = D.load("cars3d", "train", root=tmp_path)
    assert len(te) + len(tr) == 192 and len(te) == 19


def _norb(magic: int, array: np.ndarray) -> bytes:
    dims = list(array.shape) + [1] * max(0, 3 - array.ndim)
    return struct.pack(f"<ii{len(dims)}i", magic, array.ndim, *dims) + array.tobytes()


def test_smallnorb_binary_matrices(tmp_path):
    for split, prefix, n in [("training", "5x46789", 4), ("testing", "5x01235", 2)]:
        dat = np.zeros((n, 2, 96, 96), np.uint8)
        dat[:, 0] = (np.arange(n) * 50 + 10)[:, None, None]
        dat[:, 1] = 255                                    # the second camera is never used
        cat = np.arange(n, dtype=np.int32) % 5
        info = np.column_stack([np.arange(n), np.arange(n) % 9, (2 * np.arange(n)) % 36, np.arange(n) % 6]).astype(np.int32)
        base = tmp_path / f"smallnorb-{prefix}x9x18x6x2x96x96-{split}"
        base.with_name(base.name + "-dat.mat").write_bytes(_norb(0x1E3D4C55, dat))
        base.with_name(base.name + "-cat.mat").write_bytes(_norb(0x1E3D4C54, cat))
        base.with_name(base.name + "-info.mat").write_bytes(_norb(0x1E3D4C54, info))
    ds = D.load("smallnorb", "train", root=tmp_path)
    assert ds.images.shape == (4, 1, 64, 64) and ds.images[:, 0, 5, 5].tolist() == [10, 60, 110, 160]
    assert ds.labels.tolist() == [0, 1, 2, 3]
    assert ds.factors[3].tolist() == [3, 3, 3, 6, 3] and ds.factor_classes[3].tolist() == [3, 3, 3, 3, 3]
    assert len(D.load("smallnorb", "all", root=tmp_path)) == 6


def test_symsol_npz_and_png_folder(tmp_path):
    from PIL import Image

    images = RNG.integers(0, 256, (30, 64, 64), dtype=np.uint8)
    labels = np.repeat(np.arange(5), 6)
    np.savez_compressed(tmp_path / "symsol_reduced.npz", images=images, labels=labels)
    ds = D.load("symsol", "all", root=tmp_path)
    assert ds.images.shape == (30, 1, 64, 64) and torch.equal(ds.images[:, 0], torch.from_numpy(images))
    te = D.load("symsol", "test", root=tmp_path, test_fraction=0.5)
    assert torch.bincount(te.labels).tolist() == [3] * 5
    floats = tmp_path / "floats"
    floats.mkdir()
    np.savez(floats / "symsol_reduced.npz", images=images[..., None] / 255.0, labels=labels)
    assert torch.equal(D.load("symsol", "all", root=floats).images, ds.images)
    other = tmp_path / "pngs"
    for k, name in enumerate(["cone", "cube"]):
        (other / "symsol_reduced" / name).mkdir(parents=True)
        for j in range(2):
            Image.fromarray(images[2 * k + j]).save(other / "symsol_reduced" / name / f"{j}.png")
    folder_ds = D.load("symsol", "all", root=other)
    assert folder_ds.class_names == ("cone", "cube") and folder_ds.labels.tolist() == [0, 0, 1, 1]
    assert torch.equal(folder_ds.images[:, 0], torch.from_numpy(images[:4]))


def test_symsol_reference_layouts_without_labels(tmp_path):
    """The reference code's own files: its cached N×64×64×1 float array, or the flat PNGs of its archive."""
    from PIL import Image

    images = RNG.integers(0, 256, (20, 64, 64), dtype=np.uint8)
    npy = tmp_path / "npy"
    (npy / "symsol_reduced").mkdir(parents=True)
    np.save(npy / "symsol_reduced" / "symsol.npy", images[..., None] / 255.0)
    ds = D.load("symsol", "all", root=npy)
    assert ds.labels is None and ds.images.shape == (20, 1, 64, 64)
    assert torch.equal(ds.images[:, 0], torch.from_numpy(images))
    te, tr = D.load("symsol", "test", root=npy), D.load("symsol", "train", root=npy)
    assert len(te) == 2 and len(tr) == 18
    rows = {bytes(im.numpy().tobytes()) for im in torch.cat([te.images, tr.images])}
    assert rows == {bytes(im.tobytes()) for im in images[:, None]}  # a partition of the 20 images
    flat = tmp_path / "flat" / "symsol_reduced"
    flat.mkdir(parents=True)
    for j in (3, 1, 2):  # written out of order: read back in name order
        Image.fromarray(images[j]).save(flat / f"img_{j:03d}.png")
    flat_ds = D.load("symsol", "all", root=tmp_path / "flat")
    assert flat_ds.labels is None and torch.equal(flat_ds.images[:, 0], torch.from_numpy(images[1:4]))
    empty = tmp_path / "empty" / "symsol_reduced"
    empty.mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="png"):
        D.load("symsol", root=tmp_path / "empty")


@pytest.mark.parametrize("name, file", [("mnist", "train-images-idx3-ubyte"), ("cifar10", "data_batch_1"),
                                        ("svhn", "train_32x32.mat"), ("celeba", "img_align_celeba"),
                                        ("cars3d", "cars"), ("smallnorb", "training-dat.mat"),
                                        ("symsol", "symsol_reduced.npz")])
def test_missing_files_name_the_file_and_the_folder(tmp_path, monkeypatch, name, file):
    with pytest.raises(FileNotFoundError, match=file) as err:
        D.load(name, root=tmp_path)
    assert str(tmp_path) in str(err.value)
    monkeypatch.delenv("REPLAB_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="REPLAB_DATA"):
        D.load(name)
