"""CIFAR-10's restricted unpickler: the official batches load, a pickle that names anything else is refused unrun."""
import os
import pickle
import subprocess

import numpy as np
import pytest
import torch

import replab.data as D
from format_writers import cifar_batch, python2_pickle, write_cifar
from replab.data import cifar10


class _Call:
    """Pickles as ``func(*args)``: what a crafted batch file would run on loading."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _hostile(marker):
    """Pickles that, unpickled by plain ``pickle.load``, would create ``marker`` (or run other code)."""
    command = f"touch {marker}"
    return {
        "os.system": _Call(os.system, command),
        "subprocess.call": _Call(subprocess.call, ["touch", str(marker)]),
        "builtins.eval": _Call(eval, f"open({str(marker)!r}, 'w').close()"),
        "builtins.exec": _Call(exec, f"open({str(marker)!r}, 'w').close()"),
        "builtins.open": _Call(open, str(marker), "w"),
        "builtins.getattr": _Call(getattr, _Call(__import__, "os"), "system"),
        "numpy.load": _Call(np.load, str(marker)),
        "numpy.fromfile": _Call(np.fromfile, str(marker)),
        "a class": _Call(pickle.Unpickler, None),
    }


@pytest.mark.parametrize("name", list(_hostile("x")))
@pytest.mark.parametrize("protocol", [2, 4])
def test_a_batch_that_would_run_code_is_refused_and_never_runs_it(tmp_path, name, protocol):
    marker = tmp_path / "ran"
    write_cifar(tmp_path)
    payload = _hostile(marker)[name]
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2], b"batch_label": payload}
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps(batch, protocol=protocol))
    with pytest.raises(D.DatasetError, match=r"cifar10: .*data_batch_3: refused to unpickle") as err:
        D.load("cifar10", "train", root=tmp_path)
    assert "holds only dicts, lists, bytes, strings, numbers and numpy arrays" in str(err.value)
    assert not marker.exists()


def test_the_whole_batch_being_the_payload_is_refused(tmp_path):
    marker = tmp_path / "ran"
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(_Call(os.system, f"touch {marker}")))
    with pytest.raises(D.DatasetError, match="refused to unpickle posix.system|refused to unpickle nt.system"):
        D.load("cifar10", "test", root=tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("blob, message", [
    # _codecs.encode with a codec other than latin-1 (Python 3's protocol-2 bytes use only that one)
    (b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x0a\x00\x00\x00zlib_codecq\x00\x86R.", "_codecs.encode"),
    # a persistent id, which the official files never use
    (b"\x80\x02X\x01\x00\x00\x00aQ.", "refused the pickle opcode BINPERSID at byte 8"),
    # an object from the extension registry, and one built by calling a class
    (b"\x80\x02\x82\x01.", "refused the pickle opcode EXT1"),
    (b"\x80\x02cnumpy\nndarray\nK\x00\x85\x81.", "refused the pickle opcode NEWOBJ"),
    # a byte array longer than the file: refused before anything is allocated
    (b"\x80\x05\x96\xff\xff\xff\xff\xff\xff\x00\x00.", "bytearray8"),
    # an array of Python objects
    (b"\x80\x02cnumpy\ndtype\nX\x01\x00\x00\x00O\x89\x88\x87R.", "array of Python objects"),
])
def test_other_tricks_are_refused(tmp_path, blob, message):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(blob)
    with pytest.raises(D.DatasetError, match=message):
        D.load("cifar10", "test", root=tmp_path)


def test_the_unpickler_refuses_a_global_before_looking_it_up():
    with pytest.raises(ValueError, match="refused to unpickle os.system"):
        cifar10.BatchUnpickler(__import__("io").BytesIO(b"cos\nsystem\n.")).load()


@pytest.mark.parametrize("official", [True, False])
def test_official_python2_batches_and_python3_copies_load(tmp_path, official):
    data = np.arange(2 * 3072).reshape(2, 3072).astype(np.uint8)
    written = write_cifar(tmp_path, data=data, labels=[6, 9], official=official)
    blob = written["data_batch_1"].read_bytes()
    assert (b"cnumpy.core.multiarray\n_reconstruct" in blob) == official  # the name numpy 1 wrote
    tr = D.load("cifar10", "train", root=tmp_path)
    assert len(tr) == 10 and tr.labels[:2].tolist() == [6, 9]
    assert torch.equal(tr.images[:2].reshape(2, -1), torch.from_numpy(data))
    assert tr.labels[2:4].tolist() == [1, 4]
    assert len(D.load("cifar10", "all", root=tmp_path)) == 12


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_every_pickle_protocol_of_a_genuine_batch_loads(tmp_path, protocol):
    data = np.random.default_rng(protocol).integers(0, 256, (3, 3072), dtype=np.uint8)
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": data, b"labels": [0, 5, 9], b"batch_label": b"x"}, protocol=protocol))
    images, labels = cifar10.read_batch(path)
    assert np.array_equal(images.reshape(3, -1), data) and labels.tolist() == [0, 5, 9]


def test_python2_strings_keep_their_bytes(tmp_path):
    batch = cifar_batch(np.full((1, 3072), 7, np.uint8), [3])
    path = tmp_path / "b"
    path.write_bytes(python2_pickle(batch))
    images, labels = cifar10.read_batch(path)
    assert images.shape == (1, 3, 32, 32) and int(images.max()) == 7 and labels.tolist() == [3]
