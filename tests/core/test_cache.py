import dataclasses
import json

import pytest
import torch

from replab.cache import ArtifactCache, atomic_write_bytes, config_hash


@dataclasses.dataclass
class Cfg:
    width: int = 8
    lr: float = 1e-3
    name: str = "a"


def test_hash_is_stable_and_sensitive():
    assert config_hash(Cfg()) == config_hash(Cfg())
    assert config_hash(Cfg()) != config_hash(Cfg(width=9))
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash(Cfg(lr=1e-3)) != config_hash(Cfg(lr=1e-4))
    with pytest.raises(TypeError, match="cannot hash"):
        config_hash({"x": object()})


def test_round_trip_and_hit_counting(tmp_path):
    cache = ArtifactCache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"w": torch.arange(5.0), "step": 3}

    a = cache.get_or_compute("model", Cfg(), compute)
    b = cache.get_or_compute("model", Cfg(), compute)
    assert len(calls) == 1 and cache.hits == 1 and cache.misses == 1
    assert torch.equal(a["w"], b["w"]) and b["step"] == 3
    entries = cache.entries()
    assert len(entries) == 1 and entries[0]["intact"] and entries[0]["kind"] == "model"
    meta = json.loads(cache.path("model", Cfg()).with_suffix(".json").read_text())
    assert meta["config"]["width"] == 8


def test_corrupted_file_is_detected_and_recomputed(tmp_path):
    cache = ArtifactCache(tmp_path)
    cache.save("model", Cfg(), {"w": torch.ones(100)})
    path = cache.path("model", Cfg())
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert not cache.exists("model", Cfg())
    assert cache.load("model", Cfg()) is None
    assert not path.exists()  # removed, so the caller recomputes
    out = cache.get_or_compute("model", Cfg(), lambda: {"w": torch.zeros(2)})
    assert torch.equal(out["w"], torch.zeros(2))


def test_partial_file_without_sidecar_is_not_trusted(tmp_path):
    cache = ArtifactCache(tmp_path)
    path = cache.path("acts", Cfg())
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x80\x02partial")
    assert cache.load("acts", Cfg()) is None


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temporary left behind


def test_payloads_load_with_weights_only(tmp_path):
    cache = ArtifactCache(tmp_path)

    from fractions import Fraction

    cache.save("bad", Cfg(), {"obj": Fraction(1, 3)})
    # weights_only loading refuses arbitrary objects: the entry is reported absent, never executed.
    assert cache.load("bad", Cfg()) is None


def test_clear(tmp_path):
    cache = ArtifactCache(tmp_path)
    cache.save("a", Cfg(), torch.ones(1))
    cache.save("b", Cfg(), torch.ones(1))
    assert cache.clear("a") == 1
    assert [e["kind"] for e in cache.entries()] == ["b"]
    assert cache.clear() == 1 and cache.entries() == []


def test_bad_kind(tmp_path):
    with pytest.raises(ValueError, match="artifact kind"):
        ArtifactCache(tmp_path).path("../x", Cfg())


_RACER = """
import sys, time
from pathlib import Path
from replab.cache import ArtifactCache
root, log = sys.argv[1], Path(sys.argv[2])
def compute():
    with log.open("a") as fh:
        fh.write("computed\\n")
    time.sleep(1.5)
    return {"value": 7}
out = ArtifactCache(root).get_or_compute("race", {"a": 1}, compute)
assert out == {"value": 7}
"""


def test_concurrent_processes_compute_a_key_once(tmp_path):
    import subprocess
    import sys

    log = tmp_path / "computed.txt"
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(tmp_path / "cache"), str(log)]) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert log.read_text().splitlines() == ["computed"]


def test_lock_is_released_when_the_computation_fails(tmp_path):
    cache = ArtifactCache(tmp_path)

    def boom():
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("k", {"a": 2}, boom)
    assert cache.get_or_compute("k", {"a": 2}, lambda: {"ok": True}) == {"ok": True}


# "ABSOLUTE" stands for an absolute path inside the test's folder: never name a real folder of the machine here.
@pytest.mark.parametrize("kind", ["..", ".", "../x", "ABSOLUTE", "a/b", "a\\b", "", ".hidden", "-x", "x\0y", None, 3])
def test_every_path_built_from_a_kind_stays_in_the_cache(tmp_path, kind):
    if kind == "ABSOLUTE":
        kind = str(tmp_path / "victim")
        (tmp_path / "victim").mkdir()
    cache = ArtifactCache(tmp_path / "cache")
    calls = [lambda: cache.path(kind, Cfg()), lambda: cache.key(kind, Cfg()),
             lambda: cache.save(kind, Cfg(), torch.ones(1))]
    if kind is not None:  # clear(None) and entries(None) mean every kind
        calls += [lambda: cache.clear(kind), lambda: cache.entries(kind)]
    for call in calls:
        with pytest.raises(ValueError, match="artifact kind must be a plain name"):
            call()
    with pytest.raises(ValueError, match="artifact kind must be a plain name"):
        with cache.lock(kind, Cfg()):
            pass


def test_clear_never_deletes_outside_the_cache(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("mine")
    sibling = tmp_path / "sibling"
    sibling.mkdir()
    cache = ArtifactCache(tmp_path / "cache")
    cache.save("model", Cfg(), torch.ones(1))
    for kind in (str(outside), "..", "../outside", "../sibling"):
        with pytest.raises(ValueError, match="artifact kind must be a plain name"):
            cache.clear(kind)
    assert (outside / "precious.txt").read_text() == "mine" and sibling.is_dir()
    assert cache.exists("model", Cfg())


def test_clear_refuses_a_kind_folder_that_leads_outside_or_holds_foreign_files(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.pt").write_bytes(b"mine")
    cache = ArtifactCache(tmp_path / "cache")
    cache.save("model", Cfg(), torch.ones(1))
    (cache.root / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="outside the cache"):
        cache.clear("linked")
    with pytest.raises(ValueError, match="outside the cache"):
        cache.clear()  # checked before anything is removed
    assert (outside / "a.pt").read_bytes() == b"mine" and cache.exists("model", Cfg())
    (cache.root / "linked").unlink()
    (cache.root / "notes").mkdir()
    (cache.root / "notes" / "thesis.tex").write_text("mine")
    with pytest.raises(ValueError, match=r"thesis\.tex.*not written by the cache"):
        cache.clear()
    assert cache.exists("model", Cfg()) and (cache.root / "notes" / "thesis.tex").is_file()
    (cache.root / "notes" / "thesis.tex").rename(cache.root / ".notes.tex")
    (cache.root / "notes").rmdir()
    (cache.root / ".git").mkdir()
    assert cache.clear() == 1 and (cache.root / ".git").is_dir() and (cache.root / ".notes.tex").is_file()


@pytest.mark.parametrize("sidecar", ["[1]", "null", "3", '"text"', '{"sha256": 5}', "{", ""])
def test_a_malformed_sidecar_is_a_damaged_entry_that_is_recomputed(tmp_path, sidecar, caplog):
    cache = ArtifactCache(tmp_path)
    path = cache.save("model", Cfg(), {"w": torch.ones(2)})
    path.with_suffix(".json").write_text(sidecar)
    assert not cache.exists("model", Cfg())
    [entry] = cache.entries()
    assert entry["intact"] is False and entry["config"] is None
    with caplog.at_level("WARNING", logger="replab.cache"):
        out = cache.get_or_compute("model", Cfg(), lambda: {"w": torch.zeros(2)})
    assert torch.equal(out["w"], torch.zeros(2)) and "recomputing" in caplog.text
    assert cache.exists("model", Cfg()) and cache.entries()[0]["intact"]
