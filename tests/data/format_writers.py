"""Small datasets written in each loader's real file format, for the tests of good and bad files.

Each ``write_<name>(root, **arrays)`` writes a valid training and test set under ``root`` (the keyword arrays
replace the training set's) and returns ``{role: path}`` of the files it wrote, so that a test can damage one.
"""
from __future__ import annotations

import gzip
import io
import pickle
import struct

import numpy as np

RNG = np.random.default_rng(0)
_IDX_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx(array) -> bytes:
    """An IDX file: two zero bytes, the type code, the number of dimensions, big-endian sizes and data."""
    a = np.asarray(array)
    big = a.astype(a.dtype.newbyteorder(">"))
    return bytes([0, 0, _IDX_CODES[a.dtype.str[1:]], a.ndim]) + struct.pack(f">{a.ndim}i", *a.shape) + big.tobytes()


def write_mnist(root, images=None, labels=None, gz=False) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    images = RNG.integers(0, 256, (4, 28, 28), dtype=np.uint8) if images is None else images
    labels = np.array([0, 9, 3, 1], np.uint8) if labels is None else labels
    arrays = {"train-images-idx3-ubyte": images, "train-labels-idx1-ubyte": labels,
              "t10k-images-idx3-ubyte": RNG.integers(0, 256, (3, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": np.array([7, 2, 5], np.uint8)}
    paths = {}
    for name, array in arrays.items():
        path = root / (name + ".gz" if gz else name)
        path.write_bytes(gzip.compress(idx(array)) if gz else idx(array))
        paths[name.split("-")[0] + "-" + name.split("-")[1]] = path
    return paths


class _Python2Pickler(pickle._Pickler):
    """Writes every str and bytes as a Python 2 string (BINSTRING), as the official CIFAR-10 files hold them."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_string(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = _save_py2_string
    dispatch[bytes] = _save_py2_string


def python2_pickle(obj) -> bytes:
    """``obj`` pickled as the official CIFAR-10 batches were: protocol 2, Python 2 strings, numpy.core names."""
    buf = io.BytesIO()
    _Python2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def cifar_batch(data, labels, name="data_batch_1") -> dict:
    return {"batch_label": name, "labels": labels, "data": data,
            "filenames": [f"image_{k}.png" for k in range(len(labels))]}


def write_cifar(root, data=None, labels=None, official=True) -> dict:
    """The six batches of two images each; ``official`` writes them as Python 2 pickles, else Python 3 ones."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for k, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        batch = cifar_batch(RNG.integers(0, 256, (2, 3072), dtype=np.uint8), [k % 10, (k + 3) % 10], name)
        if k == 0:
            batch["data"] = batch["data"] if data is None else data
            batch["labels"] = batch["labels"] if labels is None else labels
        blob = python2_pickle(batch) if official else pickle.dumps({key.encode(): v for key, v in batch.items()})
        (folder / name).write_bytes(blob)
        paths[name] = folder / name
    return paths


def write_svhn(root, X=None, y=None) -> dict:
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    X = RNG.integers(0, 256, (32, 32, 3, 4), dtype=np.uint8) if X is None else X
    y = np.array([[10], [1], [5], [10]], np.uint8) if y is None else y
    savemat(root / "train_32x32.mat", {"X": X, "y": y})
    savemat(root / "test_32x32.mat", {"X": RNG.integers(0, 256, (32, 32, 3, 2), dtype=np.uint8),
                                      "y": np.array([[3], [4]], np.uint8)})
    return {"train": root / "train_32x32.mat", "test": root / "test_32x32.mat"}


def write_dsprites(root, n=20, imgs=None, latents_classes=None, latents_values=None) -> dict:
    from replab.data import dsprites

    root.mkdir(parents=True, exist_ok=True)
    ids = np.arange(n) * 997
    classes = dsprites.GRID.classes(ids).numpy()
    arrays = {"imgs": (RNG.random((n, 64, 64)) > 0.7).astype(np.uint8) if imgs is None else imgs,
              "latents_classes": classes if latents_classes is None else latents_classes,
              "latents_values": dsprites.GRID.values_of(ids).numpy() if latents_values is None else latents_values}
    np.savez_compressed(root / dsprites.FILE, **arrays)
    return {"npz": root / dsprites.FILE}


def write_celeba(root, n=4, partition=(0, 2, 1, 0), size=(178, 218), attributes="txt") -> dict:
    """``n`` JPEGs of ``size`` (width, height), the partition file (None: none) and a 2-attribute file, the
    official ``.txt`` or Kaggle's ``.csv`` (``attributes``; None: none)."""
    from PIL import Image

    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    for k in range(n):
        Image.fromarray(np.full((size[1], size[0], 3), 40 * k, np.uint8)).save(folder / f"{k + 1:06d}.jpg")
    paths = {"jpg": folder / "000001.jpg"}
    if partition is not None:
        paths["partition"] = root / "list_eval_partition.txt"
        paths["partition"].write_text("".join(f"{k + 1:06d}.jpg {p}\n" for k, p in enumerate(partition)))
    table = [(1 if k % 2 else -1, 1 if k % 3 else -1) for k in range(n)]
    if attributes == "txt":
        paths["attributes"] = root / "list_attr_celeba.txt"
        rows = [f"{k + 1:06d}.jpg {a:2d} {b:2d}" for k, (a, b) in enumerate(table)]
        paths["attributes"].write_text("\n".join([str(n), "Smiling Young"] + rows) + "\n")
    elif attributes == "csv":
        paths["attributes"] = root / "list_attr_celeba.csv"
        rows = [f"{k + 1:06d}.jpg,{a},{b}" for k, (a, b) in enumerate(table)]
        paths["attributes"].write_text("\n".join(["image_id,Smiling,Young"] + rows) + "\n")
    return paths


NORB_U1, NORB_I4 = 0x1E3D4C55, 0x1E3D4C54


def norb(magic: int, array) -> bytes:
    """A NORB binary matrix: little-endian magic, number of dimensions, at least 3 sizes, then the data."""
    a = np.asarray(array)
    dims = list(a.shape) + [1] * max(0, 3 - a.ndim)
    return struct.pack(f"<ii{len(dims)}i", magic, a.ndim, *dims) + a.tobytes()


def write_smallnorb(root, dat=None, cat=None, info=None, dat_magic=NORB_U1) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, prefix, n in [("training", "5x46789", 3), ("testing", "5x01235", 2)]:
        arrays = {"dat": RNG.integers(0, 256, (n, 2, 96, 96), dtype=np.uint8),
                  "cat": np.arange(n, dtype=np.int32) % 5,
                  "info": np.column_stack([np.arange(n), np.arange(n) % 9, (2 * np.arange(n)) % 36,
                                           np.arange(n) % 6]).astype(np.int32)}
        magic = {"dat": NORB_U1, "cat": NORB_I4, "info": NORB_I4}
        if split == "training":
            arrays.update({k: v for k, v in (("dat", dat), ("cat", cat), ("info", info)) if v is not None})
            magic["dat"] = dat_magic
        for kind, array in arrays.items():
            path = root / f"smallnorb-{prefix}x9x18x6x2x96x96-{split}-{kind}.mat"
            path.write_bytes(norb(magic[kind], array))
            paths[f"{split}-{kind}"] = path
    return paths


def write_symsol(root, images=None, labels=None, layout="npz") -> dict:
    """The reduced Symsol set as ``symsol_reduced.npz`` (``layout="npz"``), the reference code's
    ``symsol_reduced/symsol.npy`` of floats (``"npy"``) or one PNG folder per class (``"png"``)."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    images = RNG.integers(0, 256, (20, 64, 64), dtype=np.uint8) if images is None else images
    labels = np.repeat(np.arange(5), 4) if labels is None else labels
    if layout == "npz":
        np.savez(root / "symsol_reduced.npz", images=images, labels=labels)
        return {"npz": root / "symsol_reduced.npz"}
    folder = root / "symsol_reduced"
    folder.mkdir(parents=True)
    if layout == "npy":
        np.save(folder / "symsol.npy", images[..., None] / 255.0)
        return {"npy": folder / "symsol.npy"}
    for k, (image, label) in enumerate(zip(images, labels)):
        (folder / f"shape{label}").mkdir(exist_ok=True)
        Image.fromarray(image).save(folder / f"shape{label}" / f"{k:03d}.png")
    return {"png": folder / "shape0" / "000.png"}


def write_cars3d(root, im=None) -> dict:
    from scipy.io import savemat

    folder = root / "cars"
    folder.mkdir(parents=True)
    im = RNG.integers(0, 256, (8, 8, 3, 6, 2), dtype=np.uint8) if im is None else im
    savemat(folder / "car_001_mesh.mat", {"im": im})
    return {"mat": folder / "car_001_mesh.mat"}


def write_mnist10k(root, images=None, labels=None, is_test=None) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    n = 10 if images is None else len(images)
    np.savez(root / "mnist10k.npz",
             images=RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8) if images is None else images,
             labels=np.arange(n) % 10 if labels is None else labels,
             is_test=np.arange(n) % 5 == 0 if is_test is None else is_test)
    return {"npz": root / "mnist10k.npz"}


def write_affnist(root, images=None, labels=None, n_batches=2) -> dict:
    """affNIST's centred sets and ``n_batches`` transformed batches per split, each a MATLAB 5 file holding the
    struct ``affNISTdata`` (``image`` 1600×N, one image a column written row by row, ``label_int``,
    ``label_one_of_n``); ``images``/``labels`` replace the centred training set's."""
    from scipy.io import savemat

    def save(path, imgs, labs):
        path.parent.mkdir(parents=True, exist_ok=True)
        imgs, labs = np.asarray(imgs), np.asarray(labs)
        image = imgs.reshape(len(imgs), -1).T if imgs.ndim == 3 else imgs
        one_of_n = np.eye(10, dtype=np.uint8)[np.clip(labs.astype(int), 0, 9)].T
        savemat(path, {"affNISTdata": {"image": image, "label_int": labs, "label_one_of_n": one_of_n}})
        return path

    base = root / "affnist"
    paths = {"train": save(base / "just_centered" / "training_and_validation.mat",
                           RNG.integers(0, 256, (3, 40, 40), dtype=np.uint8) if images is None else images,
                           np.array([4, 0, 9], np.uint8) if labels is None else labels),
             "test": save(base / "just_centered" / "test.mat", RNG.integers(0, 256, (2, 40, 40), dtype=np.uint8),
                          np.array([1, 7], np.uint8))}
    for split, folder, n in (("train", "training_and_validation_batches", 3), ("test", "test_batches", 2)):
        for k in range(1, n_batches + 1):
            paths[f"{split}-{k}"] = save(base / "transformed" / folder / f"{k}.mat",
                                         RNG.integers(0, 256, (n, 40, 40), dtype=np.uint8),
                                         (np.arange(n) + k) % 10)
    return paths


def archive(kind: str, members: dict) -> bytes:
    """A ``"tar.gz"`` or ``"zip"`` archive in memory of ``{member name: bytes}``."""
    import tarfile
    import zipfile

    buf = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buf, "w") as z:
            for name, data in members.items():
                z.writestr(name, data)
    else:
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
