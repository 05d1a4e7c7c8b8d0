"""Download the real datasets' official files into the data root, resumably, and check them.

The table of sources is ``sources.toml`` beside this module (see its header): each dataset's file addresses, the
checksums its publishers give, where the files go under the root (``REPLAB_DATA``) and the pages it serves.

* :func:`fetch` downloads what is missing with a progress bar. A download grows in ``<name>.part`` and is resumed
  by an HTTP Range request on the next run; a server that ignores Range restarts it from scratch. The finished file
  is checked against the published checksum (MD5 or SHA-256) or, where none is published, its SHA-256 is recorded
  in ``<root>/checksums.json`` and checked from then on; only then is it renamed into place. Archives whose
  contents the loaders read are unpacked (each file written beside its target and renamed) and removed.
* Nothing already there is deleted or overwritten: a complete file with a good checksum is kept, one with a bad
  checksum is reported (``force=True`` downloads it again), a download that fails its checksum is kept as
  ``<name>.bad``. One lock per dataset keeps two fetches of it from colliding.
* :func:`verify` re-checks what is there; :func:`listing` says which pages each dataset serves.
"""
from __future__ import annotations

import datetime
import fnmatch
import gzip
import hashlib
import http.client
import json
import os
import shutil
import tarfile
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, ClassVar, Iterator

from ._base import resolve_root

__all__ = ["FetchError", "ChecksumMismatch", "Source", "SourceFile", "Check", "sources", "fetch", "verify", "listing",
           "present", "download", "file_hash", "SOURCES", "CHECKSUMS"]

SOURCES = Path(__file__).with_name("sources.toml")
CHECKSUMS = "checksums.json"
LOCKS = ".fetch-locks"
CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A dataset that could not be fetched or checked; the message names dataset, address, file and problem."""


class ChecksumMismatch(FetchError):
    """A file whose checksum differs from the published or recorded one."""


@dataclass(frozen=True)
class SourceFile:
    """One downloaded file of a dataset (see the header of ``sources.toml`` for each field)."""
    name: str
    urls: tuple[str, ...]
    md5: str | None = None
    sha256: str | None = None
    unpack: str | None = None
    members: str = "*"
    strip: int = 0
    flatten: bool = False
    into: str = ""
    provides: tuple[str, ...] = ()

    def targets(self) -> tuple[str, ...]:
        """The files (globs) under the root that the loader reads."""
        if self.provides:
            return self.provides
        if self.unpack == "gzip":
            return (str(PurePosixPath(self.into) / self.name.removesuffix(".gz")),)
        return (self.name,)

    def published(self) -> tuple[str, str] | None:
        """``(algorithm, hex digest)`` of the publisher's checksum, or None."""
        return ("md5", self.md5) if self.md5 else ("sha256", self.sha256) if self.sha256 else None


@dataclass(frozen=True)
class Source:
    name: str
    title: str
    home: str
    pages: tuple[str, ...]
    checksums: str
    files: tuple[SourceFile, ...] = ()
    manual: str | None = None
    provides: tuple[str, ...] = ()      # what the loader reads, for a dataset put in place by hand (no files)

    def downloadable(self) -> bool:
        return bool(self.files) and all(f.urls for f in self.files)


@dataclass(frozen=True)
class Check:
    """One line of :func:`verify`: the ``status`` of ``path`` (one of ``STATUSES``) and why."""
    STATUSES: ClassVar[tuple[str, ...]] = ("ok", "mismatch", "unverified", "missing", "partial", "manual")
    dataset: str
    path: str
    status: str
    detail: str = ""


def sources(path=SOURCES) -> dict[str, Source]:
    """The table of ``sources.toml``: dataset name -> :class:`Source`."""
    with open(path, "rb") as f:
        table = tomllib.load(f)
    out = {}
    for name, d in table.items():
        files = tuple(SourceFile(**{**f, "urls": tuple(f.get("urls", ())), "provides": tuple(f.get("provides", ()))})
                      for f in d.get("files", ()))
        out[name] = Source(name, d["title"], d["home"], tuple(d.get("pages", ())), d.get("checksums", ""), files,
                           d.get("manual"), tuple(d.get("provides", ())))
    return out


def file_hash(path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _root(root) -> Path:
    folder = resolve_root(root)
    if folder is None:
        raise FetchError("no data folder: set REPLAB_DATA (or pass --root) to the folder the datasets go to")
    return folder


def _source(name: str, table: dict[str, Source]) -> Source:
    if name not in table:
        raise FetchError(f"{name}: unknown dataset; known datasets: {', '.join(sorted(table))}")
    return table[name]


# -- the record of checksums beside the data ---------------------------------------------------------------------
def _read_record(root: Path) -> dict:
    path = root / CHECKSUMS
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise FetchError(f"{path}: not valid JSON ({err}); move it away to start a new record") from err


def _record(root: Path, entries: dict[str, dict]) -> None:
    """Add ``entries`` (relative path -> sha256, bytes, source) to ``<root>/checksums.json`` atomically."""
    from filelock import FileLock

    with FileLock(str(_lock_dir(root) / "checksums.lock")):
        record = _read_record(root)
        record.update(entries)
        tmp = root / (CHECKSUMS + ".tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, root / CHECKSUMS)


def _entry(path: Path, source: str) -> dict:
    return {"sha256": file_hash(path), "bytes": path.stat().st_size, "source": source,
            "date": datetime.date.today().isoformat()}


def _lock_dir(root: Path) -> Path:
    d = root / LOCKS
    d.mkdir(parents=True, exist_ok=True)
    return d


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _matches(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.glob(pattern) if p.is_file())


# -- one download --------------------------------------------------------------------------------------------------
def _unreachable(label: str, url: str, reason, hint: str) -> FetchError:
    host = urllib.parse.urlsplit(url).netloc
    return FetchError(f"{label}: cannot reach {host}: {reason}; {hint}")


def download(url: str, dest: Path, *, label: str, hint: str = "", progress: bool = True,
             log: Callable[[str], None] = print, timeout: float = 60.0, _restarted: bool = False) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming a part left by an earlier run."""
    from tqdm import tqdm

    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "replab-data-fetch"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset and not _restarted:
            if (err.headers.get("Content-Range") or "").strip() == f"bytes */{offset}":
                return part         # the part was complete already (interrupted before its rename)
            log(f"{label}: the server refuses to resume {part.name} at byte {offset}; starting it again")
            part.unlink()
            return download(url, dest, label=label, hint=hint, progress=progress, log=log, timeout=timeout,
                            _restarted=True)
        raise FetchError(f"{label}: {url}: HTTP {err.code} {err.reason} while downloading {dest.name}") from err
    except (urllib.error.URLError, OSError) as err:
        raise _unreachable(label, url, getattr(err, "reason", err), hint) from err
    with response:
        mode = "ab"
        if offset and response.status != 206:
            log(f"{label}: {urllib.parse.urlsplit(url).netloc} does not honour Range requests; downloading "
                f"{dest.name} again from the start")
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        if offset:
            log(f"{label}: resuming {dest.name} at byte {offset:,}")
        try:
            with open(part, mode) as f, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                             desc=f"{label}: {dest.name}", disable=not progress) as bar:
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
        except (http.client.IncompleteRead, OSError) as err:
            raise FetchError(f"{label}: {url}: the transfer of {dest.name} broke off after "
                             f"{part.stat().st_size:,} bytes ({type(err).__name__}); the partial file {part} is "
                             f"kept: run the same command again to resume") from err
    size = part.stat().st_size
    if total is not None and size < total:
        raise FetchError(f"{label}: {url}: the connection closed after {size:,} of {total:,} bytes of "
                         f"{dest.name}; the partial file {part} is kept: run the same command again to resume")
    return part


def _check_download(part: Path, dest: Path, sf: SourceFile, url: str, label: str) -> str:
    """Check the finished ``part`` against the published checksum; rename it to ``dest``; say what was checked."""
    published = sf.published()
    if published is None:
        os.replace(part, dest)
        return "no checksum published"
    algorithm, expected = published
    got = file_hash(part, algorithm)
    if got.lower() != expected.lower():
        bad = dest.with_name(dest.name + ".bad")
        os.replace(part, bad)
        raise ChecksumMismatch(f"{label}: {url}: checksum mismatch for {dest.name}: the publisher gives "
                               f"{algorithm} {expected}, the download has {got}; it is kept as {bad} and not used")
    os.replace(part, dest)
    return f"published {algorithm} checked"


# -- unpacking -----------------------------------------------------------------------------------------------------
def _member_target(sf: SourceFile, member: str, label: str) -> str | None:
    """Where ``member`` goes (relative to the root), or None when it is not one of ``sf.members``."""
    path = PurePosixPath(member)
    if path.is_absolute() or ".." in path.parts:
        raise FetchError(f"{label}: {sf.name}: the archive member {member!r} points outside its folder; refused")
    if not fnmatch.fnmatch(member, sf.members):
        return None
    parts = (path.name,) if sf.flatten else path.parts[sf.strip:]
    return str(PurePosixPath(sf.into, *parts)) if parts else None


def _entries(archive: Path, sf: SourceFile, label: str) -> Iterator[tuple[str, Callable]]:
    """(target relative to the root, opener) of every file of the archive that is unpacked."""
    if sf.unpack == "gzip":
        yield sf.targets()[0], lambda: gzip.open(archive, "rb")
    elif sf.unpack == "tar":
        with tarfile.open(archive, "r:*") as tar:
            for m in tar:
                rel = _member_target(sf, m.name, label) if m.isfile() else None
                if rel is not None:
                    yield rel, lambda m=m: tar.extractfile(m)
    elif sf.unpack == "zip":
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                rel = None if info.is_dir() else _member_target(sf, info.filename, label)
                if rel is not None:
                    yield rel, lambda info=info: z.open(info)
    else:
        raise FetchError(f"{label}: {sf.name}: unknown unpack method {sf.unpack!r} (expected gzip, tar or zip)")


def _stream_hash(opener: Callable) -> str:
    h = hashlib.sha256()
    with opener() as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _write(opener: Callable, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".unpacking")
    with opener() as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, CHUNK)
    os.replace(tmp, target)


def _unpack(root: Path, archive: Path, sf: SourceFile, label: str, force: bool, checked: str,
            log: Callable[[str], None]) -> dict[str, dict]:
    """Unpack ``archive`` under ``root``; returns the checksum entries of the files written."""
    written, kept = {}, 0
    source = f"unpacked from {sf.name} ({checked})"
    try:
        for rel, opener in _entries(archive, sf, label):
            target = root / rel
            if target.exists() and not force:
                # the same bytes (unpacked by an earlier run that stopped) are recorded; other files are kept
                if _stream_hash(opener) == file_hash(target):
                    written[rel] = _entry(target, source)
                else:
                    kept += 1
                continue
            _write(opener, target)
            written[rel] = _entry(target, source)
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as err:
        raise FetchError(f"{label}: {archive}: cannot be unpacked ({type(err).__name__}: {err}); it is kept; "
                         f"remove it and fetch again") from err
    if not written and not kept:
        raise FetchError(f"{label}: {archive}: holds no member matching {sf.members!r}")
    if kept:
        log(f"{label}: kept {kept} file(s) already there (use --force to overwrite them)")
    return written


# -- what is there -------------------------------------------------------------------------------------------------
def _present(root: Path, sf: SourceFile) -> bool:
    return all(_matches(root, pattern) for pattern in sf.targets())


def _by_hand(root: Path, src: Source) -> bool:
    return bool(src.provides) and all(_matches(root, p) for p in src.provides)


def _check_file(root: Path, path: Path, sf: SourceFile, record: dict, dataset: str) -> Check:
    rel = _rel(path, root)
    published = sf.published()
    if published and not sf.unpack and rel == sf.name:
        algorithm, expected = published
        got = file_hash(path, algorithm)
        if got.lower() == expected.lower():
            return Check(dataset, rel, "ok", f"published {algorithm}")
        return Check(dataset, rel, "mismatch", f"the publisher gives {algorithm} {expected}, the file has {got}")
    entry = record.get(rel)
    if entry is None:
        return Check(dataset, rel, "unverified", "no checksum published or recorded (not downloaded by replab "
                                                 "data fetch)")
    got = file_hash(path)
    if got == entry["sha256"]:
        return Check(dataset, rel, "ok", f"sha256 recorded {entry.get('date', '')}, {entry.get('source', '')}")
    return Check(dataset, rel, "mismatch", f"the sha256 recorded {entry.get('date', '')} is {entry['sha256']}, "
                                           f"the file has {got}")


def _checks(root: Path, src: Source, record: dict) -> list[Check]:
    rows = []
    if not src.files and _by_hand(root, src):
        return [Check(src.name, p, "unverified", f"{len(_matches(root, p)):,} file(s) put there by hand; "
                                                 f"{src.checksums}") for p in src.provides]
    if not src.files or (src.manual and not any(_present(root, sf) for sf in src.files)):
        return [Check(src.name, "", "manual", src.manual.format(root=root) if src.manual else "")]
    for sf in src.files:
        part = root / (sf.name + ".part")
        if part.exists():
            rows.append(Check(src.name, _rel(part, root), "partial",
                              f"{part.stat().st_size:,} bytes; `replab data fetch {src.name}` resumes it"))
        for pattern in sf.targets():
            found = _matches(root, pattern)
            if not found:
                rows.append(Check(src.name, pattern, "missing", f"`replab data fetch {src.name}` downloads it"))
            rows.extend(_check_file(root, p, sf, record, src.name) for p in found)
    return rows


def verify(names=None, root=None, table: dict[str, Source] | None = None) -> list[Check]:
    """Re-check the files of ``names`` (default: every dataset with something under the root)."""
    table = sources() if table is None else table
    folder = _root(root)
    record = _read_record(folder) if folder.exists() else {}
    rows = []
    for name in (names or sorted(table)):
        checks = _checks(folder, _source(name, table), record)
        if names or any(c.status not in ("missing", "manual") for c in checks):
            rows.extend(checks)
    return rows


def present(name: str, root=None, table: dict[str, Source] | None = None) -> bool:
    """Whether the files dataset ``name``'s loader reads are all under the data root (``root`` or
    ``REPLAB_DATA``); False without a data folder. Looks at names only; :func:`verify` checks the contents."""
    table = sources() if table is None else table
    src = _source(name, table)
    folder = resolve_root(root)
    if folder is None or not folder.exists():
        return False
    if src.files:   # a gzip file the loader also reads unpacked (MNIST's) counts in either form
        return all(_present(folder, sf) or (sf.name.endswith(".gz") and not sf.unpack
                                            and _matches(folder, sf.name[:-3])) for sf in src.files)
    return _by_hand(folder, src)


def listing(root=None, table: dict[str, Source] | None = None) -> list[dict]:
    """One row per dataset: name, title, state under the root (fetched, partial, missing, manual) and pages."""
    table = sources() if table is None else table
    folder = resolve_root(root)
    rows = []
    for name, src in sorted(table.items()):
        state = "no data folder"
        if folder is not None:
            if src.files and all(_present(folder, sf) for sf in src.files):
                state = "fetched"
            elif not src.files and _by_hand(folder, src):
                state = "put by hand"
            elif any((folder / (sf.name + ".part")).exists() or _present(folder, sf) for sf in src.files):
                state = "partial"
            else:
                state = "manual" if src.manual else "missing"
        rows.append({"name": name, "title": src.title, "state": state, "pages": src.pages})
    return rows


# -- fetch ---------------------------------------------------------------------------------------------------------
def _fetch_file(root: Path, src: Source, sf: SourceFile, *, force: bool, progress: bool,
                log: Callable[[str], None]) -> str:
    label = src.name
    hint = f"put the files under {root} by hand ({', '.join(t for f in src.files for t in f.targets())})"
    dest = root / sf.name
    if sf.unpack and dest.exists() and not force:
        log(f"{label}: {sf.name} is there from an earlier run that stopped before unpacking it; unpacking it")
        return _finish_archive(root, dest, sf, label, _check_archive(dest, sf, label), log)
    if _present(root, sf) and not force:
        record = _read_record(root)
        checks = [_check_file(root, p, sf, record, src.name) for pattern in sf.targets()
                  for p in _matches(root, pattern)]
        bad = [c for c in checks if c.status == "mismatch"]
        if bad:
            raise ChecksumMismatch(f"{label}: {bad[0].path}: checksum mismatch: {bad[0].detail}; the file is "
                                   f"kept (use --force to download it again)")
        new = {c.path: _entry(root / c.path, "recorded when found in place") for c in checks
               if c.status == "unverified"}
        if new:
            _record(root, new)
        return f"{', '.join(sf.targets())}: already there, kept"
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in sf.urls:
        try:
            part = download(url, dest, label=label, hint=hint, progress=progress, log=log)
            checked = _check_download(part, dest, sf, url, label)
            break
        except FetchError as err:
            if len(sf.urls) == 1 or isinstance(err, ChecksumMismatch):
                raise
            errors.append(str(err))
            log(f"{err}; trying the next address")
    else:
        raise FetchError("; ".join(errors))
    if not sf.unpack:
        if sf.published() is None:
            _record(root, {sf.name: _entry(dest, f"recorded at the first download from {url}")})
        return f"{sf.name}: downloaded ({checked})"
    return _finish_archive(root, dest, sf, label, checked, log, force=force)


def _check_archive(archive: Path, sf: SourceFile, label: str) -> str:
    """Check an archive left by an earlier run against the published checksum (kept when it fails)."""
    published = sf.published()
    if published is None:
        return "no checksum published"
    algorithm, expected = published
    got = file_hash(archive, algorithm)
    if got.lower() != expected.lower():
        raise ChecksumMismatch(f"{label}: {archive}: checksum mismatch: the publisher gives {algorithm} {expected}, "
                               f"the file has {got}; it is kept (use --force to download it again)")
    return f"published {algorithm} checked"


def _finish_archive(root: Path, archive: Path, sf: SourceFile, label: str, checked: str,
                    log: Callable[[str], None], force: bool = False) -> str:
    """Unpack the checked ``archive``, record its files' checksums, remove it."""
    entries = _unpack(root, archive, sf, label, force, checked, log)
    _record(root, entries)
    archive.unlink()
    return f"{sf.name}: downloaded ({checked}), unpacked {len(entries)} file(s) and removed"


def fetch(name: str, root=None, *, force: bool = False, progress: bool = True, url: str | None = None,
          table: dict[str, Source] | None = None, log: Callable[[str], None] = print) -> list[str]:
    """Download dataset ``name``'s files into the data root; returns one line per file saying what was done.

    ``url`` replaces the address of a dataset that has a single file (e.g. the reduced Symsol set).
    """
    from filelock import FileLock

    table = sources() if table is None else table
    src = _source(name, table)
    folder = _root(root)
    files = src.files
    if url is not None:
        if len(files) != 1:
            raise FetchError(f"{name}: --url needs a dataset of one file; {name} has {len(files)}")
        files = (SourceFile(**{**files[0].__dict__, "urls": (url,)}),)
    elif not src.downloadable():
        raise FetchError(f"{name}: {src.manual.format(root=folder) if src.manual else 'no address known'}")
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(_lock_dir(folder) / f"{name}.lock")):
        return [_fetch_file(folder, src, sf, force=force, progress=progress, log=log) for sf in files]
