"""The real affNIST loader on small MATLAB 5 files written in the publisher's structure."""
import numpy as np
import pytest
import torch
from format_writers import RNG, write_affnist

import replab.data as D
from replab.data import DatasetError


def test_centred_sets_read_back_exactly(tmp_path):
    images = RNG.integers(0, 256, (3, 40, 40), dtype=np.uint8)
    images[0, 0, :] = 255          # a bright first row: rows must stay rows, not become columns
    paths = write_affnist(tmp_path, images=images, labels=np.array([2, 8, 5], np.uint8))
    train = D.load("affnist", "train", root=tmp_path)
    assert train.images.shape == (3, 1, 40, 40) and train.images.dtype == torch.uint8
    assert torch.equal(train.images[:, 0], torch.from_numpy(images))
    assert train.labels.tolist() == [2, 8, 5] and train.name == "affnist"
    test = D.load("affnist", "test", root=tmp_path)
    assert test.labels.tolist() == [1, 7]
    both = D.load("affnist", "all", root=tmp_path)
    assert torch.equal(both.images[:3], train.images) and torch.equal(both.images[3:], test.images)
    assert paths["train"].name == "training_and_validation.mat"


def test_column_layout_is_row_major(tmp_path):
    # one image whose pixel (row r, column c) is r: column k of `image` holds the 40 rows one after the other
    img = np.repeat(np.arange(40, dtype=np.uint8)[:, None], 40, axis=1)
    write_affnist(tmp_path, images=img.reshape(1, 1600).T, labels=np.array([3], np.uint8))
    got = D.load("affnist", "train", root=tmp_path).images[0, 0].numpy()
    assert (got[:, 7] == np.arange(40)).all() and (got[5] == 5).all()


def test_transformed_batches_in_numeric_order(tmp_path, monkeypatch):
    write_affnist(tmp_path, n_batches=11)
    monkeypatch.setenv("REPLAB_DATA", str(tmp_path))
    train = D.load("affnist", "train", transformed=True)
    assert len(train) == 11 * 3
    # batch k's labels are (0, 1, 2) + k: 1, 2, …, 11 in numeric order (not 1, 10, 11, 2, …)
    assert train.labels.reshape(11, 3)[:, 0].tolist() == [k % 10 for k in range(1, 12)]
    some = D.load("affnist", "test", transformed=True, batches=[10, 2])
    assert some.labels.tolist() == [0, 1, 2, 3]
    assert len(D.load("affnist", "all", transformed=True)) == 11 * 3 + 11 * 2


def test_missing_files_name_the_file_and_the_fetch_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"just_centered/test\.mat.*replab data fetch affnist"):
        D.load("affnist", "test", root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"test_batches/1\.mat.*replab data fetch affnist"):
        D.load("affnist", "test", root=tmp_path, transformed=True)
    write_affnist(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"test_batches/7\.mat"):
        D.load("affnist", "test", root=tmp_path, transformed=True, batches=[1, 7])
    with pytest.raises(ValueError, match="batches"):
        D.load("affnist", "test", root=tmp_path, batches=[1])
    with pytest.raises(ValueError, match="transformed"):
        D.load("affnist", "test", root=tmp_path, transformed="yes")


def test_no_data_folder(monkeypatch):
    monkeypatch.delenv("REPLAB_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="REPLAB_DATA"):
        D.load("affnist", "test")


@pytest.mark.parametrize("damage, message", [
    ("truncate", "damaged|cut short|declares"),
    ("wrong_shape", "expected shape"),
    ("labels", "outside 0..9"),
    ("no_struct", "affNISTdata"),
    ("pixels", "0..255"),
    ("count", "expected one per image"),
])
def test_damaged_files_raise_dataset_error(tmp_path, damage, message):
    from scipy.io import savemat

    paths = write_affnist(tmp_path)
    path = paths["test"]
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "wrong_shape":
        write_affnist(tmp_path, images=RNG.integers(0, 256, (28 * 28, 3), dtype=np.uint8))
        path = paths["train"]
    elif damage == "labels":
        write_affnist(tmp_path, labels=np.array([1, 10, 2], np.uint8))
        path = paths["train"]
    elif damage == "no_struct":
        savemat(path, {"images": np.zeros((1600, 2), np.uint8)})
    elif damage == "pixels":
        write_affnist(tmp_path, images=np.full((1600, 3), 300, np.int32))
        path = paths["train"]
    elif damage == "count":
        write_affnist(tmp_path, labels=np.array([1, 2], np.uint8))
        path = paths["train"]
    split = "test" if path == paths["test"] else "train"
    with pytest.raises(DatasetError, match=message) as err:
        D.load("affnist", split, root=tmp_path)
    assert err.value.dataset == "affnist" and err.value.path == str(path)
