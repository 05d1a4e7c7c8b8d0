"""The artifact cache: trained models and extracted activations, stored once and reused by every page.

An artifact is keyed by its kind (``"vae"``, ``"activations"``, ...) and a hash of its configuration together with
the library's version and a fingerprint of the library's source code, so a page never reuses a model trained by
other code. Files live under ``REPLAB_CACHE`` (default ``.cache/replab`` at the repository root). They are written
atomically (temporary file, fsync, rename) beside a JSON sidecar holding the configuration and the payload's
SHA-256, so a corrupted or partial file is detected, removed and recomputed. Payloads are loaded with
``torch.load(..., weights_only=True)``: store tensors, numbers, strings and containers of them (state dicts).
Computing an artifact holds an inter-process lock on its key, so two pages (or two grid workers on one file
system) that need the same model train it once: the second waits, then loads it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from filelock import FileLock

from . import __version__

log = logging.getLogger("replab.cache")

__all__ = ["ArtifactCache", "config_hash", "code_fingerprint", "code_closure", "register_code", "INFRASTRUCTURE",
           "default_root", "repo_root", "atomic_write_bytes", "atomic_torch_save", "safe_torch_load",
           "map_array_folder", "ARRAY_INDEX"]

# A kind names a folder directly below the cache root: a plain name, never a path.
_KIND = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# What the cache writes inside a kind folder (payloads, sidecars, locks, metrics, array files, temporaries).
# Clearing a folder that holds anything else is refused: the root may have been pointed at the wrong folder.
_CACHE_SUFFIXES = {".pt", ".json", ".lock", ".csv", ".f32", ".tmp", ".partial"}

# An artifact too large for memory (a streamed capture, replab.activations) is a folder of raw float32 files, one
# per array, with this index naming each array, its file and its shape.
ARRAY_INDEX = "stream.json"


def repo_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: the working directory) holding ``_config.yml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_config.yml").is_file() and (folder / "lib" / "replab").is_dir():
            return folder
    return None


def default_root() -> Path:
    """``REPLAB_CACHE`` if set, else ``.cache/replab`` at the repository root (or in the working directory)."""
    env = os.environ.get("REPLAB_CACHE")
    if env:
        return Path(env).expanduser()
    root = repo_root() or repo_root(Path(__file__).parent) or Path.cwd()
    return root / ".cache" / "replab"


# Modules that store, schedule, check or present artifacts without changing what an artifact holds: editing them
# changes no key.
INFRASTRUCTURE = ("replab.cache", "replab._validation", "replab.grid", "replab.cli", "replab.book",
                  "replab.notebooks", "replab.plotting", "replab.claims", "replab.profiles")
# kind -> the modules whose code produces artifacts of that kind (see register_code); other kinds hash the
# whole library
_KIND_CODE: dict[str, tuple[str, ...]] = {}


def register_code(kind: str, *modules: str) -> None:
    """Declare that artifacts of ``kind`` are produced by ``modules`` (dotted names) and what they import."""
    _KIND_CODE[kind] = tuple(sorted(modules))


def _module_file(name: str) -> Path | None:
    pkg = Path(__file__).parent
    parts = name.split(".")
    if parts[0] != "replab":
        return None
    base = pkg.joinpath(*parts[1:])
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _imports_of(name: str, path: Path) -> set[str]:
    """The replab modules ``path`` (module ``name``) imports anywhere in its body, function-level included."""
    import ast

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m.startswith("replab") and _module_file(m) is not None}


def code_closure(*modules: str) -> list[Path]:
    """The source files of ``modules`` and of every replab module they import, at any depth, less
    :data:`INFRASTRUCTURE`, sorted."""
    todo, seen = list(modules), {}
    while todo:
        name = todo.pop()
        if name in seen or name in INFRASTRUCTURE:
            continue
        path = _module_file(name)
        if path is None:
            raise ValueError(f"code_closure: no module {name!r} in the library")
        seen[name] = path
        todo.extend(_imports_of(name, path))
    return sorted(set(seen.values()))


@lru_cache(maxsize=None)
def code_fingerprint(*modules: str) -> str:
    """SHA-256 over the sources that produce an artifact: ``modules`` and what they import (see
    :func:`code_closure`), or, with no module named, the whole library."""
    h = hashlib.sha256()
    pkg = Path(__file__).parent
    paths = code_closure(*modules) if modules else sorted(pkg.rglob("*.py"))
    for path in paths:
        h.update(str(path.relative_to(pkg)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _canonical(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"__class__": type(obj).__qualname__,
                **{f.name: _canonical(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                   if not f.metadata.get("run_setting")}}
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, float) and obj.is_integer():
        return obj  # keep 1.0 distinct from 1 in repr but stable
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot hash configuration value of type {type(obj).__name__}: {obj!r}")


def config_hash(config: Any, *, with_code: bool = True, code: tuple[str, ...] = ()) -> str:
    """A short stable hash of ``config`` (a dataclass, dict or list of plain values; dataclass fields marked
    ``metadata={"run_setting": True}`` left out), the library version and the code that produces it: the modules
    ``code`` and what they import, or the whole library when ``code`` is empty."""
    payload = {"config": _canonical(config), "version": __version__}
    if with_code:
        payload["code"] = code_fingerprint(*code)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj: Any, path: Path) -> str:
    """``torch.save`` ``obj`` to ``path`` atomically; returns the SHA-256 of the bytes written."""
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    atomic_write_bytes(Path(path), data)
    return hashlib.sha256(data).hexdigest()


def safe_torch_load(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a file written by :func:`atomic_torch_save` with ``weights_only=True``."""
    return torch.load(path, map_location=map_location, weights_only=True)


def map_array_folder(folder: Path) -> dict[str, torch.Tensor] | None:
    """The arrays of an array folder (see :data:`ARRAY_INDEX`), memory-mapped; None when its index is missing or
    a file's size differs from what the index says (a partial or damaged entry)."""
    folder = Path(folder)
    try:
        index = json.loads((folder / ARRAY_INDEX).read_text())
        out = {}
        for entry in index["layers"]:
            rows, cols = entry["shape"]
            path = folder / entry["file"]
            if path.stat().st_size != rows * cols * 4:
                return None
            flat = torch.from_file(str(path), shared=False, size=rows * cols, dtype=torch.float32)
            out[entry["name"]] = flat.view(rows, cols)
        return out
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_sidecar(path: Path) -> dict | None:
    """The sidecar at ``path`` as a dict holding a string ``sha256``; None when it is missing or malformed (not
    JSON, JSON that is not an object, no digest), so a damaged sidecar marks a damaged entry."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str):
        return None
    return meta


class ArtifactCache:
    """A folder of artifacts keyed by ``(kind, configuration)``.

    Parameters
    ----------
    root : path, optional
        Where artifacts live; default :func:`default_root`.
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_root()
        self.hits = 0
        self.misses = 0

    # -- paths ---------------------------------------------------------------------------------------------
    def kind_dir(self, kind: str) -> Path:
        """The folder of ``kind``'s artifacts. Every path the cache builds from a caller's input goes through
        here: ``kind`` must be a plain name (letters, digits, ``_``, ``-``, ``.``; not starting with ``.`` or
        ``-``) and the folder must resolve inside the root (a symbolic link leading out is refused)."""
        if not isinstance(kind, str) or not _KIND.fullmatch(kind):
            raise ValueError(f"artifact kind must be a plain name (letters, digits, '_', '-', '.'; no path "
                             f"separator, not starting with '.' or '-'), got {kind!r}")
        folder = self.root / kind
        root = self.root.resolve()
        if not folder.resolve().is_relative_to(root) or folder.resolve() == root:
            raise ValueError(f"artifact kind {kind!r}: {folder} leads outside the cache {root}")
        return folder

    def key(self, kind: str, config: Any) -> str:
        self.kind_dir(kind)
        return config_hash(config, code=_KIND_CODE.get(kind, ()))

    def path(self, kind: str, config: Any) -> Path:
        """Where the payload of ``(kind, config)`` lives (it may not exist yet)."""
        return self.kind_dir(kind) / f"{self.key(kind, config)}.pt"

    @staticmethod
    def _meta_path(path: Path) -> Path:
        return path.with_suffix(".json")

    # -- read / write --------------------------------------------------------------------------------------
    def exists(self, kind: str, config: Any) -> bool:
        return self._valid(self.path(kind, config))

    def _valid(self, path: Path) -> bool:
        meta = _read_sidecar(self._meta_path(path))
        if not path.is_file() or meta is None:
            return False
        return hashlib.sha256(path.read_bytes()).hexdigest() == meta["sha256"]

    def load(self, kind: str, config: Any, map_location: str | torch.device = "cpu") -> Any | None:
        """The stored payload, or ``None`` when absent. A corrupted or partial entry is removed and
        reported as absent, so the caller recomputes it."""
        path = self.path(kind, config)
        if not path.exists() and not self._meta_path(path).exists():
            self.misses += 1
            return None
        if not self._valid(path):
            log.warning("replab cache: corrupted or partial %s artifact %s removed; recomputing", kind, path.name)
            self._remove(path)
            self.misses += 1
            return None
        try:
            obj = safe_torch_load(path, map_location=map_location)
        except Exception as exc:  # an unreadable file is treated like a corrupted one
            log.warning("replab cache: unreadable %s artifact %s (%s) removed; recomputing", kind, path.name, exc)
            self._remove(path)
            self.misses += 1
            return None
        self.hits += 1
        log.info("replab cache: hit %s/%s", kind, path.name)
        return obj

    def load_key(self, kind: str, key: str, map_location: str | torch.device = "cpu") -> Any | None:
        """The intact payload stored for ``kind`` under ``key`` (a key :meth:`key` computed), or None."""
        if not isinstance(key, str) or not re.fullmatch(r"[0-9a-f]{20}", key):
            raise ValueError(f"key must be an artifact key (20 hexadecimal digits), got {key!r}")
        path = self.kind_dir(kind) / f"{key}.pt"
        if not self._valid(path):
            return None
        return safe_torch_load(path, map_location=map_location)

    def save(self, kind: str, config: Any, obj: Any) -> Path:
        """Store ``obj`` for ``(kind, config)`` atomically and return its path."""
        path = self.path(kind, config)
        digest = atomic_torch_save(obj, path)
        meta = {"kind": kind, "config": _canonical(config), "sha256": digest, "version": __version__,
                "code": code_fingerprint(*_KIND_CODE.get(kind, ())), "bytes": path.stat().st_size}
        # The sidecar is written last: a payload without a matching sidecar is never trusted.
        atomic_write_bytes(self._meta_path(path), json.dumps(meta, indent=1).encode())
        return path

    @contextmanager
    def lock(self, kind: str, config: Any) -> Iterator[None]:
        """Hold the inter-process lock of ``(kind, config)`` (a ``.lock`` file beside the payload; the operating
        system releases it if the holder dies, so a crash never leaves the key blocked)."""
        path = self.path(kind, config)
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path.with_suffix(".lock"))):
            yield

    def get_or_compute(self, kind: str, config: Any, compute: Callable[[], Any],
                       map_location: str | torch.device = "cpu") -> Any:
        """Load ``(kind, config)`` or compute, store and return it. Concurrent callers with the same key compute
        it once: the others wait on the key's lock and then load the stored result."""
        obj = self.load(kind, config, map_location=map_location)
        if obj is not None:
            return obj
        with self.lock(kind, config):
            if self.exists(kind, config):  # finished by another process while this one waited
                self.misses -= 1
                return self.load(kind, config, map_location=map_location)
            obj = compute()
            self.save(kind, config, obj)
        return obj

    # -- housekeeping --------------------------------------------------------------------------------------
    def _remove(self, path: Path) -> None:
        for p in (path, self._meta_path(path)):
            if p.exists():
                p.unlink()

    def entries(self, kind: str | None = None) -> list[dict]:
        """One record per stored artifact (of every kind, or of ``kind``): kind, key, size in bytes, whether it
        is intact, and its configuration (None when its sidecar is missing or damaged)."""
        out = []
        pattern = f"{self.kind_dir(kind).name}" if kind is not None else "*"
        if not self.root.is_dir():
            return out
        for path in sorted(self.root.glob(f"{pattern}/*.pt")):
            meta = _read_sidecar(self._meta_path(path)) or {}
            out.append({"kind": path.parent.name, "key": path.stem, "bytes": path.stat().st_size,
                        "intact": self._valid(path), "config": meta.get("config")})
        for index in sorted(self.root.glob(f"{pattern}/*/{ARRAY_INDEX}")):
            folder = index.parent
            size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file() and p.name != ARRAY_INDEX)
            out.append({"kind": folder.parent.name, "key": folder.name, "bytes": size,
                        "intact": map_array_folder(folder) is not None, "config": None})
        return out

    def clear(self, kind: str | None = None) -> int:
        """Remove every artifact (or those of one kind); returns how many were removed.

        Only kind folders inside the root are removed, and only when they hold nothing but what the cache
        writes; every folder is checked before anything is removed, so a refusal (``ValueError``) removes
        nothing."""
        if kind is not None:
            targets = [self.kind_dir(kind)]
        else:
            # Folders whose names no kind can have (".git", ...) are not the cache's: left alone.
            targets = [self.kind_dir(p.name) for p in sorted(self.root.glob("*"))
                       if p.is_dir() and _KIND.fullmatch(p.name)]
        targets = [folder for folder in targets if folder.is_dir()]
        for folder in targets:
            for path in folder.rglob("*"):
                if path.is_file() and path.suffix not in _CACHE_SUFFIXES and path.name != ARRAY_INDEX \
                        and not any(part.endswith(".partial") for part in path.relative_to(folder).parts):
                    raise ValueError(f"not clearing {folder}: {path} was not written by the cache "
                                     f"(is REPLAB_CACHE={self.root} the right folder?); nothing was removed")
        n = 0
        for folder in targets:
            n += len(list(folder.glob("*.pt"))) + len(list(folder.glob(f"*/{ARRAY_INDEX}")))
            shutil.rmtree(folder)
        return n
