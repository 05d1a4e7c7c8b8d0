"""``replab data fetch / verify / ls`` against a local HTTP server on the loopback address, never the network.

The server serves small files in each dataset's format; the source table's addresses are pointed at it.
"""
import argparse
import dataclasses
import gzip
import hashlib
import http.server
import json
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from format_writers import (archive, write_affnist, write_cars3d, write_celeba, write_cifar, write_dsprites,
                            write_mnist, write_smallnorb, write_svhn, write_symsol)

import replab.data as D
from replab.data import command
from replab.data import fetch as F

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


class Server:
    """Serves ``files`` (path -> bytes) on 127.0.0.1; per path, ``cut`` sends only the first half of the body
    once (then closes), ``no_range`` ignores Range headers, ``status`` answers with that HTTP error."""

    def __init__(self):
        self.files, self.cut, self.no_range, self.status, self.requests = {}, set(), set(), {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.lstrip("/")
                server.requests.append((path, self.headers.get("Range")))
                if path in server.status or path not in server.files:
                    self.send_error(server.status.get(path, 404))
                    return
                body, start = server.files[path], 0
                rng = self.headers.get("Range")
                if rng and path not in server.no_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if path in server.cut:
                    server.cut.discard(path)
                    self.wfile.write(body[start:start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def _local(server, name, files, *, md5=None, table=None):
    """The real source table with dataset ``name``'s files served by ``server`` (``files``: file name -> bytes);
    a published MD5 is replaced by the served file's (``md5="keep"`` keeps the real one)."""
    table = dict(F.sources() if table is None else table)
    src = table[name]
    new = []
    for sf in src.files:
        server.files[sf.name] = files[sf.name]
        digest = sf.md5 if md5 == "keep" else (hashlib.md5(files[sf.name]).hexdigest() if sf.md5 else None)
        new.append(dataclasses.replace(sf, urls=(server.url(sf.name),), md5=digest))
    table[name] = dataclasses.replace(src, files=tuple(new), manual=None)
    return table


def _read_all(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _served(name, stage: Path) -> dict:
    """The files the publisher of ``name`` serves, made from small files in the format written under ``stage``."""
    if name == "mnist":
        write_mnist(stage, gz=True)
        return {p.name: p.read_bytes() for p in stage.glob("*.gz")}
    if name == "svhn":
        write_svhn(stage)
        return _read_all(stage)
    if name == "dsprites":
        write_dsprites(stage)
        return _read_all(stage)
    if name == "cifar10":
        write_cifar(stage)
        return {"cifar-10-python.tar.gz": archive("tar.gz", _read_all(stage))}
    if name == "smallnorb":
        write_smallnorb(stage)
        return {k + ".gz": gzip.compress(v) for k, v in _read_all(stage).items()}
    if name == "cars3d":
        write_cars3d(stage)
        members = {f"data/{k}": v for k, v in _read_all(stage).items()}
        members["data/shapes/shapes12.mat"] = b"not a car"          # another dataset of the same archive
        return {"nips2015-analogy-data.tar.gz": archive("tar.gz", members)}
    if name == "symsol":
        write_symsol(stage, layout="png")
        return {"symsol_reduced.zip": archive("zip", {f"symsol_reduced/{Path(k).name}": v
                                                      for k, v in _read_all(stage).items()})}
    if name == "affnist":
        write_affnist(stage)
        files = _read_all(stage / "affnist")
        return {"affnist-just_centered-test.mat.zip": archive("zip", {"test.mat": files["just_centered/test.mat"]}),
                "affnist-just_centered-training_and_validation.mat.zip": archive(
                    "zip", {"training_and_validation.mat": files["just_centered/training_and_validation.mat"]}),
                "affnist-transformed-test_batches.zip": archive(
                    "zip", {f"test_batches/{k}.mat": files[f"transformed/test_batches/{k}.mat"] for k in (1, 2)}),
                "affnist-transformed-training_and_validation_batches.zip": archive(
                    "zip", {f"training_and_validation_batches/{k}.mat":
                            files[f"transformed/training_and_validation_batches/{k}.mat"] for k in (1, 2)})}
    raise KeyError(name)


LOADS = {"mnist": {}, "svhn": {}, "dsprites": {"source": "file"}, "cifar10": {}, "smallnorb": {}, "cars3d": {},
         "symsol": {}, "affnist": {"transformed": True}}


@pytest.mark.parametrize("name", sorted(LOADS))
def test_fetch_places_files_where_the_loader_reads_them(tmp_path, server, name):
    files = _served(name, tmp_path / "stage")
    root = tmp_path / "data"
    table = _local(server, name, files)
    lines = F.fetch(name, root, progress=False, table=table, log=lambda m: None)
    assert len(lines) == len(table[name].files)
    ds = D.load(name, "all", root=root, **LOADS[name])
    assert len(ds) > 0
    # archives are unpacked and removed; nothing is left half-written
    leftovers = [p.name for p in root.rglob("*") if p.suffix in (".part", ".bad", ".unpacking", ".tmp")]
    assert not leftovers
    if any(sf.unpack for sf in table[name].files):
        assert not any((root / sf.name).exists() for sf in table[name].files)
    # every file is checked: by the published checksum or by the SHA-256 recorded at the first download
    checks = F.verify([name], root, table=table)
    assert checks and {c.status for c in checks} == {"ok"}
    record = json.loads((root / F.CHECKSUMS).read_text())
    for c in checks:
        if c.path in record:
            assert record[c.path]["sha256"] == hashlib.sha256((root / c.path).read_bytes()).hexdigest()
    # a second fetch downloads nothing
    server.requests.clear()
    assert all("already there, kept" in line for line in F.fetch(name, root, progress=False, table=table))
    assert server.requests == []


def test_the_loaded_data_is_the_served_data(tmp_path, server):
    files = _served("mnist", tmp_path / "stage")
    F.fetch("mnist", tmp_path / "data", progress=False, table=_local(server, "mnist", files))
    assert torch.equal(D.load("mnist", "train", root=tmp_path / "data").images,
                       D.load("mnist", "train", root=tmp_path / "stage").images)
    files = _served("cars3d", tmp_path / "stage")
    F.fetch("cars3d", tmp_path / "data", progress=False, table=_local(server, "cars3d", files))
    assert not (tmp_path / "data" / "shapes").exists() and not (tmp_path / "data" / "data").exists()
    assert torch.equal(D.load("cars3d", "all", root=tmp_path / "data").images,
                       D.load("cars3d", "all", root=tmp_path / "stage").images)


def test_interrupted_download_resumes_with_a_range_request(tmp_path, server):
    body = np.random.default_rng(1).bytes(300_000)
    table = _local(server, "dsprites", {F.sources()["dsprites"].files[0].name: body})
    name = table["dsprites"].files[0].name
    server.cut.add(name)
    with pytest.raises(F.FetchError, match=r"dsprites: http://127\.0\.0\.1:\d+/.*150,000 .*run the same command "
                                           r"again to resume"):
        F.fetch("dsprites", tmp_path, progress=False, table=table, log=lambda m: None)
    part = tmp_path / (name + ".part")
    assert part.stat().st_size == 150_000 and not (tmp_path / name).exists()
    assert [c.status for c in F.verify(["dsprites"], tmp_path, table=table)] == ["partial", "missing"]
    messages = []
    F.fetch("dsprites", tmp_path, progress=False, table=table, log=messages.append)
    assert server.requests[-1] == (name, "bytes=150000-")
    assert (tmp_path / name).read_bytes() == body and not part.exists()
    assert any("resuming" in m for m in messages)


def test_server_that_ignores_range_restarts_the_part(tmp_path, server):
    body = np.random.default_rng(2).bytes(5000)
    name = F.sources()["dsprites"].files[0].name
    table = _local(server, "dsprites", {name: body})
    server.no_range.add(name)
    (tmp_path / (name + ".part")).write_bytes(b"x" * 1000)        # a part the server will not continue
    messages = []
    F.fetch("dsprites", tmp_path, progress=False, table=table, log=messages.append)
    assert (tmp_path / name).read_bytes() == body
    assert any("does not honour Range" in m and "from the start" in m for m in messages)


def test_a_part_longer_than_the_file_starts_again(tmp_path, server):
    body = b"0123456789" * 100
    name = F.sources()["dsprites"].files[0].name
    table = _local(server, "dsprites", {name: body})
    (tmp_path / (name + ".part")).write_bytes(b"y" * 2000)
    messages = []
    F.fetch("dsprites", tmp_path, progress=False, table=table, log=messages.append)
    assert (tmp_path / name).read_bytes() == body and any("refuses to resume" in m for m in messages)


def test_wrong_checksum_is_refused_and_the_download_kept_aside(tmp_path, server):
    files = _served("cifar10", tmp_path / "stage")
    table = _local(server, "cifar10", files, md5="keep")       # the real published MD5: our small archive fails it
    with pytest.raises(F.ChecksumMismatch) as err:
        F.fetch("cifar10", tmp_path / "data", progress=False, table=table)
    got = hashlib.md5(files["cifar-10-python.tar.gz"]).hexdigest()
    msg = str(err.value)
    assert "c58f30108f718f92721af3b95e74349a" in msg and got in msg and "cifar-10-python.tar.gz" in msg
    assert server.url("cifar-10-python.tar.gz") in msg
    assert (tmp_path / "data" / "cifar-10-python.tar.gz.bad").read_bytes() == files["cifar-10-python.tar.gz"]
    assert not (tmp_path / "data" / "cifar-10-batches-py").exists()


def test_server_error_names_dataset_url_status_and_file(tmp_path, server):
    files = _served("svhn", tmp_path / "stage")
    table = _local(server, "svhn", files)
    server.status["test_32x32.mat"] = 503
    with pytest.raises(F.FetchError, match=r"svhn: http://127\.0\.0\.1:\d+/test_32x32\.mat: HTTP 503 .*test_32x32"):
        F.fetch("svhn", tmp_path / "data", progress=False, table=table)
    assert (tmp_path / "data" / "train_32x32.mat").exists() and not (tmp_path / "data" / "test_32x32.mat").exists()


def test_unreachable_host_says_where_to_put_the_files(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]                       # closed once the block ends: nothing listens there
    src = F.sources()["svhn"]
    table = {"svhn": dataclasses.replace(src, files=tuple(dataclasses.replace(
        sf, urls=(f"http://127.0.0.1:{port}/{sf.name}",)) for sf in src.files))}
    with pytest.raises(F.FetchError, match=rf"svhn: cannot reach 127\.0\.0\.1:{port}: .*; put the files under "
                                           rf"{tmp_path} by hand \(train_32x32\.mat, test_32x32\.mat\)"):
        F.fetch("svhn", tmp_path, progress=False, table=table)


def test_a_failing_address_falls_back_to_the_mirror(tmp_path, server):
    files = _served("mnist", tmp_path / "stage")
    table = _local(server, "mnist", files)
    src = table["mnist"]
    table["mnist"] = dataclasses.replace(src, files=tuple(
        dataclasses.replace(sf, urls=(server.url("gone/" + sf.name), sf.urls[0])) for sf in src.files))
    messages = []
    F.fetch("mnist", tmp_path / "data", progress=False, table=table, log=messages.append)
    assert len(D.load("mnist", "all", root=tmp_path / "data")) == 7
    assert any("HTTP 404" in m and "trying the next address" in m for m in messages)


def test_existing_files_are_kept_a_bad_one_reported_and_replaced_only_with_force(tmp_path, server):
    files = _served("svhn", tmp_path / "stage")
    table = _local(server, "svhn", files)
    root = tmp_path / "data"
    F.fetch("svhn", root, progress=False, table=table)
    damaged = files["train_32x32.mat"][:-10] + b"0123456789"
    (root / "train_32x32.mat").write_bytes(damaged)
    with pytest.raises(F.ChecksumMismatch, match=r"svhn: train_32x32\.mat: checksum mismatch.*--force"):
        F.fetch("svhn", root, progress=False, table=table)
    assert (root / "train_32x32.mat").read_bytes() == damaged
    bad = [c for c in F.verify(["svhn"], root, table=table) if c.status == "mismatch"]
    assert [c.path for c in bad] == ["train_32x32.mat"]
    assert hashlib.sha256(damaged).hexdigest() in bad[0].detail
    F.fetch("svhn", root, progress=False, table=table, force=True)
    assert (root / "train_32x32.mat").read_bytes() == files["train_32x32.mat"]
    assert {c.status for c in F.verify(["svhn"], root, table=table)} == {"ok"}


def test_files_put_in_place_by_hand_are_unverified_until_recorded(tmp_path, server):
    write_svhn(tmp_path)
    table = _local(server, "svhn", {sf.name: b"" for sf in F.sources()["svhn"].files})
    assert {c.status for c in F.verify(["svhn"], tmp_path, table=table)} == {"unverified"}
    assert all("already there, kept" in line for line in F.fetch("svhn", tmp_path, progress=False, table=table))
    assert server.requests == []
    checks = F.verify(None, tmp_path, table=table)
    assert {c.dataset for c in checks} == {"svhn"} and {c.status for c in checks} == {"ok"}
    assert "found in place" in checks[0].detail


def test_unpacking_keeps_existing_files_and_refuses_members_outside_the_folder(tmp_path, server):
    files = _served("cars3d", tmp_path / "stage")
    root = tmp_path / "data"
    (root / "cars").mkdir(parents=True)
    mine = b"the user's own file"
    (root / "cars" / "car_001_mesh.mat").write_bytes(mine)
    files["nips2015-analogy-data.tar.gz"] = archive("tar.gz", {"data/cars/car_001_mesh.mat": b"x",
                                                              "data/cars/car_002_mesh.mat": b"y"})
    table = _local(server, "cars3d", files)
    F.fetch("cars3d", root, progress=False, table={**table, "cars3d": dataclasses.replace(
        table["cars3d"], files=(dataclasses.replace(table["cars3d"].files[0], provides=("cars/car_002_mesh.mat",)),))})
    assert (root / "cars" / "car_001_mesh.mat").read_bytes() == mine
    assert (root / "cars" / "car_002_mesh.mat").read_bytes() == b"y"
    files = {"symsol_reduced.zip": archive("zip", {"../../escaped.png": b"z"})}
    with pytest.raises(F.FetchError, match="outside its folder"):
        F.fetch("symsol", root, progress=False, table=_local(server, "symsol", files))
    assert not (tmp_path / "escaped.png").exists() and not (root.parent / "escaped.png").exists()


def test_manual_datasets_say_where_to_put_which_files(tmp_path):
    with pytest.raises(F.FetchError, match=rf"celeba: .*refuse scripted downloads.*{tmp_path}/img_align_celeba/"
                                           r"000001\.jpg.*list_eval_partition\.txt"):
        F.fetch("celeba", tmp_path)
    with pytest.raises(F.FetchError, match=r"symsol: .*--url"):
        F.fetch("symsol", tmp_path)
    assert [c.status for c in F.verify(["celeba"], tmp_path)] == ["manual"]


def test_no_data_folder_and_unknown_dataset(monkeypatch, tmp_path):
    monkeypatch.delenv("REPLAB_DATA", raising=False)
    with pytest.raises(F.FetchError, match="REPLAB_DATA"):
        F.fetch("svhn")
    with pytest.raises(F.FetchError, match="unknown dataset.*known datasets: affnist"):
        F.fetch("imagenet", tmp_path)


def test_the_table_names_loaders_and_real_pages():
    table = F.sources()
    assert set(table) == {"mnist", "cifar10", "svhn", "dsprites", "smallnorb", "cars3d", "symsol", "affnist",
                          "celeba"}
    assert set(table) <= set(D.names())
    for src in table.values():
        assert src.pages and all((NOTEBOOKS / f"{page}.md").exists() for page in src.pages), src.name
        assert src.downloadable() or src.manual
        for sf in src.files:
            assert all(u.startswith(("http://", "https://")) for u in sf.urls)
            assert sf.md5 is None or len(sf.md5) == 32


def _cli(*argv):
    parser = argparse.ArgumentParser(prog="replab")
    command.add_subcommand(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_command_fetch_verify_ls(tmp_path, server, monkeypatch, capsys):
    files = _served("smallnorb", tmp_path / "stage")
    table = _local(server, "smallnorb", files)
    monkeypatch.setattr(F, "sources", lambda path=F.SOURCES: table)
    root = str(tmp_path / "data")
    assert _cli("data", "fetch", "smallnorb", "--root", root, "--no-progress") == 0
    assert _cli("data", "verify", "--root", root) == 0
    out = capsys.readouterr().out
    assert "smallnorb" in out and "6 ok" in out
    assert _cli("data", "ls", "--root", root) == 0
    out = capsys.readouterr().out
    assert "fetched" in out and "bonheme2022/01-encoder-before-decoder" in out and "celeba" in out
    (tmp_path / "data" / "smallnorb-5x01235x9x18x6x2x96x96-testing-cat.mat").write_bytes(b"changed")
    assert _cli("data", "verify", "smallnorb", "--root", root) == 1
    assert "1 mismatch" in capsys.readouterr().out
    assert _cli("data", "fetch", "celeba", "--root", root) == 1
    assert "img_align_celeba" in capsys.readouterr().err


def test_a_complete_part_is_finished_without_downloading_again(tmp_path, server):
    body = b"abcdefghij" * 50
    name = F.sources()["dsprites"].files[0].name
    table = _local(server, "dsprites", {name: body})
    (tmp_path / (name + ".part")).write_bytes(body)             # interrupted between the last byte and the rename
    F.fetch("dsprites", tmp_path, progress=False, table=table, log=lambda m: None)
    assert (tmp_path / name).read_bytes() == body and server.requests == [(name, "bytes=500-")]


def test_two_fetches_of_one_dataset_at_once_download_it_once(tmp_path, server):
    files = _served("svhn", tmp_path / "stage")
    table = _local(server, "svhn", files)
    results, errors = [], []

    def run():
        try:
            results.append(F.fetch("svhn", tmp_path / "data", progress=False, table=table))
        except Exception as err:          # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 2
    assert sorted(path for path, _ in server.requests) == ["test_32x32.mat", "train_32x32.mat"]
    assert sum("already there" in line for r in results for line in r) == 2
    assert {c.status for c in F.verify(["svhn"], tmp_path / "data", table=table)} == {"ok"}


def test_an_unpacking_that_stopped_is_finished_on_the_next_run(tmp_path, server):
    files = _served("cifar10", tmp_path / "stage")
    table = _local(server, "cifar10", files)
    root = tmp_path / "data"
    (root / "cifar-10-batches-py").mkdir(parents=True)
    (root / "cifar-10-python.tar.gz").write_bytes(files["cifar-10-python.tar.gz"])     # downloaded, not unpacked
    stage = tmp_path / "stage" / "cifar-10-batches-py"
    (root / "cifar-10-batches-py" / "data_batch_1").write_bytes((stage / "data_batch_1").read_bytes())
    messages = []
    F.fetch("cifar10", root, progress=False, table=table, log=messages.append)
    assert server.requests == [] and any("stopped before unpacking" in m for m in messages)
    assert not (root / "cifar-10-python.tar.gz").exists()
    assert {c.status for c in F.verify(["cifar10"], root, table=table)} == {"ok"}
    assert len(D.load("cifar10", "all", root=root)) == 12


def test_celeba_put_in_place_by_hand_is_seen(tmp_path):
    write_celeba(tmp_path)
    assert [(c.path, c.status) for c in F.verify(None, tmp_path)] == [("img_align_celeba/*.jpg", "unverified")]
    assert {r["name"]: r["state"] for r in F.listing(tmp_path)}["celeba"] == "put by hand"
