"""Damaged files in every format the loaders read: truncated, replaced by random bytes, corrupted.

Each raises the one DatasetError, whose message starts with the dataset and the damaged file; none leaks a parser's
own exception (EOFError, KeyError, BadZipFile, UnpicklingError, "image file is truncated", ...). The property
tests feed random, truncated and corrupted bytes and accept only a DatasetError or a dataset that loads.
"""
import gzip
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import replab.data as D
from format_writers import (write_cars3d, write_celeba, write_cifar, write_dsprites, write_mnist, write_mnist10k,
                            write_smallnorb, write_svhn, write_symsol)

# (id, dataset, writer, the file it damages, load keywords)
CASES = [
    ("mnist-idx", "mnist", lambda root: write_mnist(root), "train-images", {}),
    ("mnist-idx-labels", "mnist", lambda root: write_mnist(root), "train-labels", {}),
    ("mnist-gzip", "mnist", lambda root: write_mnist(root, gz=True), "train-images", {}),
    ("cifar10-pickle", "cifar10", lambda root: write_cifar(root), "data_batch_1", {}),
    ("svhn-mat", "svhn", lambda root: write_svhn(root), "train", {}),
    ("dsprites-npz", "dsprites", lambda root: write_dsprites(root), "npz", {}),
    ("celeba-jpeg", "celeba", lambda root: write_celeba(root), "jpg", {"split": "all"}),
    ("celeba-partition", "celeba", lambda root: write_celeba(root), "partition", {}),
    ("celeba-attributes", "celeba", lambda root: write_celeba(root), "attributes", {"split": "all"}),
    ("celeba-attributes-csv", "celeba", lambda root: write_celeba(root, attributes="csv"), "attributes",
     {"split": "all"}),
    ("smallnorb-dat", "smallnorb", lambda root: write_smallnorb(root), "training-dat", {}),
    ("smallnorb-info", "smallnorb", lambda root: write_smallnorb(root), "training-info", {}),
    ("symsol-npz", "symsol", lambda root: write_symsol(root), "npz", {"split": "all"}),
    ("symsol-npy", "symsol", lambda root: write_symsol(root, layout="npy"), "npy", {"split": "all"}),
    ("symsol-png", "symsol", lambda root: write_symsol(root, layout="png"), "png", {"split": "all"}),
    ("cars3d-mat", "cars3d", lambda root: write_cars3d(root), "mat", {"split": "all"}),
    ("mnist10k-npz", "mnist10k", lambda root: write_mnist10k(root), "npz", {}),
    ("affmnist-npz", "affmnist", lambda root: write_mnist10k(root), "npz", {}),
]
IDS = [case[0] for case in CASES]


def _written(tmp_path, case):
    _, name, write, role, kwargs = case
    path = write(tmp_path)[role]
    return name, path, path.read_bytes(), kwargs


def _load_or_dataset_error(name, root, path, kwargs):
    """Load; a failure must be a DatasetError naming the dataset and the damaged file."""
    try:
        D.load(name, root=root, **kwargs)
    except D.DatasetError as err:
        assert str(err).startswith(f"{name}: {path}: ") and err.dataset == name and err.path == str(path), str(err)
        return err
    return None


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_intact_files_load(tmp_path, case):
    name, path, _, kwargs = _written(tmp_path, case)
    assert len(D.load(name, root=tmp_path, **kwargs)) > 0


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_truncated_files_raise_the_dataset_error(tmp_path, case):
    name, path, good, kwargs = _written(tmp_path, case)
    cuts = {0, 1, 3, 9, 40, len(good) // 3, len(good) // 2, len(good) - 40}
    for cut in sorted(c for c in cuts if 0 <= c < len(good)):
        path.write_bytes(good[:cut])
        err = _load_or_dataset_error(name, tmp_path, path, kwargs)
        assert err is not None, f"{name}: {path.name} cut to {cut} of {len(good)} bytes loaded"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_random_bytes_raise_the_dataset_error(tmp_path, case):
    name, path, good, kwargs = _written(tmp_path, case)
    rng = np.random.default_rng(0)
    for size in (1, 17, 1000, len(good)):
        path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        assert _load_or_dataset_error(name, tmp_path, path, kwargs) is not None


def test_the_messages_say_what_was_wrong(tmp_path):
    paths = write_mnist(tmp_path, gz=True)
    paths["train-images"].write_bytes(paths["train-images"].read_bytes()[:-30])
    with pytest.raises(D.DatasetError, match=r"mnist: .*train-images-idx3-ubyte.gz: damaged, truncated or not in the "
                                             r"expected format \(EOFError: Compressed file ended"):
        D.load("mnist", root=tmp_path)
    paths["train-images"].write_bytes(gzip.compress(gzip.decompress(paths["t10k-images"].read_bytes())[:-5]))
    with pytest.raises(D.DatasetError, match=r"data: the header declares shape \(3, 28, 28\) \(2352 bytes of data\) "
                                             r"but the file holds 2347 bytes"):
        D.load("mnist", root=tmp_path)
    cifar = write_cifar(tmp_path)["data_batch_2"]
    cifar.write_bytes(cifar.read_bytes()[:100])
    with pytest.raises(D.DatasetError, match=r"cifar10: .*data_batch_2: damaged, truncated .*\((ValueError: pickle exhausted|"
                                             r"UnpicklingError)"):
        D.load("cifar10", root=tmp_path)
    jpg = write_celeba(tmp_path / "c")["jpg"]
    jpg.write_bytes(jpg.read_bytes()[:300])
    with pytest.raises(D.DatasetError, match=r"celeba: .*000001.jpg: damaged, truncated .*\(OSError: (image file is "
                                             r"truncated|Truncated File Read)"):
        D.load("celeba", "all", root=tmp_path / "c")
    norb = write_smallnorb(tmp_path / "n")["training-info"]
    norb.write_bytes(norb.read_bytes()[:6])
    with pytest.raises(D.DatasetError, match=r"smallnorb: .*training-info.mat: the header is cut short \(6 bytes\)"):
        D.load("smallnorb", root=tmp_path / "n")


def test_a_dsprites_header_that_claims_more_than_the_file_holds_allocates_nothing(tmp_path):
    import zipfile

    path = write_dsprites(tmp_path)["npz"]
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    bigger = members["imgs.npy"].replace(b"(20, 64, 64), }", b"(9999999999, 64, 64), }")
    members["imgs.npy"] = bigger.replace(b" " * 8 + b"\n", b"\n", 1)   # the header keeps its length
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(D.DatasetError, match=r"imgs.npy: the header declares shape \(9999999999, 64, 64\)"):
        D.load("dsprites", root=tmp_path)


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("name, write, role, nbytes", [("svhn", write_svhn, "train", 32 * 32 * 3 * 4),
                                                       ("cars3d", write_cars3d, "mat", 8 * 8 * 3 * 6 * 2)])
def test_a_mat_element_of_unknown_type_is_refused_before_scipy_reads_it(tmp_path, name, write, role, nbytes,
                                                                        compressed):
    """One changed byte in the type of the image data (2, uint8, becomes 0x7602): scipy's reader would crash the
    interpreter on it, inside a compressed element too."""
    path = write(tmp_path)[role]
    raw = path.read_bytes()
    tag = struct.pack("<II", 2, nbytes)
    assert raw.count(tag) == 1
    raw = raw.replace(tag, struct.pack("<II", 0x7602, nbytes))
    if compressed:
        body = zlib.compress(raw[128:])
        raw = raw[:128] + struct.pack("<II", 15, len(body)) + body
    path.write_bytes(raw)
    with pytest.raises(D.DatasetError, match=f"{name}: .*{path.name}: the data element at byte \\d+ has the unknown "
                                             f"type 30210"):
        D.load(name, root=tmp_path, split="all" if name == "cars3d" else "train")


def test_mat_files_of_other_versions_are_refused(tmp_path):
    path = write_svhn(tmp_path)["train"]
    raw = path.read_bytes()
    path.write_bytes(raw[:124] + b"\x00\x02" + raw[126:])
    with pytest.raises(D.DatasetError, match="not a MATLAB 5 .mat file"):
        D.load("svhn", root=tmp_path)
    path.write_bytes(raw[:100])
    with pytest.raises(D.DatasetError, match="shorter than the 128-byte header of a MATLAB 5 file"):
        D.load("svhn", root=tmp_path)


def test_missing_files_are_still_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        D.load("cifar10", root=tmp_path)


# -- properties: any bytes give a dataset or the DatasetError -----------------------------------------------------
def _damaged(good: bytes):
    """Random bytes, a truncation of ``good``, or ``good`` with a few bytes overwritten."""
    n = len(good)
    corrupted = st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 255)), min_size=1, max_size=4).map(
        lambda edits: _edit(good, edits))
    return st.one_of(st.binary(max_size=2 * n), st.integers(0, n - 1).map(lambda cut: good[:cut]), corrupted)


def _edit(good: bytes, edits) -> bytes:
    out = bytearray(good)
    for position, value in edits:
        out[position] = value
    return bytes(out)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_any_damage_gives_the_dataset_error_or_a_dataset(tmp_path, case):
    name, path, good, kwargs = _written(tmp_path, case)

    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(blob=_damaged(good))
    def check(blob):
        path.write_bytes(blob)
        _load_or_dataset_error(name, tmp_path, path, kwargs)

    check()


def test_a_folder_where_a_file_should_be_is_named(tmp_path):
    paths = write_mnist(tmp_path)
    paths["train-labels"].unlink()
    paths["train-labels"].mkdir()
    with pytest.raises(D.DatasetError, match=r"mnist: .*train-labels-idx1-ubyte: cannot be read \(IsADirectoryError"):
        D.load("mnist", root=tmp_path)
