"""Resumable checkpoints of a run (or of a stacked group of runs), checked before they are trusted.

A checkpoint is written atomically with a JSON sidecar holding the SHA-256 of its bytes, the artifact keys of
the runs it holds, the step it was taken at and the length of the run. The previous checkpoint is kept until the
next one is complete, so a kill at any moment leaves at least one good checkpoint. On resume a checkpoint is
used only when its bytes match the digest, its keys are the runs' keys and its step lies inside the run
(1 ≤ step < steps); a damaged or foreign one is discarded with a warning, and the run resumes from the previous
checkpoint or starts again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from ..cache import atomic_torch_save, atomic_write_bytes, safe_torch_load

log = logging.getLogger("replab.train")

__all__ = ["save", "load", "remove", "LAST", "PREVIOUS"]

LAST, PREVIOUS = "last.pt", "prev.pt"
FORMAT = 2


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def save(folder: Path, state: dict, keys: list[str], step: int, steps: int) -> Path:
    """Write ``state`` (the weights, optimiser and records after ``step`` updates) as the newest checkpoint in
    ``folder``; the one it replaces becomes the previous checkpoint."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    last, prev = folder / LAST, folder / PREVIOUS
    if last.exists() and _sidecar(last).exists():
        os.replace(last, prev)
        os.replace(_sidecar(last), _sidecar(prev))
    digest = atomic_torch_save({**state, "step": int(step), "keys": list(keys)}, last)
    meta = {"format": FORMAT, "sha256": digest, "keys": list(keys), "step": int(step), "steps": int(steps)}
    atomic_write_bytes(_sidecar(last), json.dumps(meta).encode())  # written last: a file without it is not trusted
    return last


def _verified(path: Path, keys: list[str], steps: int, map_location) -> dict | None:
    """The checkpoint at ``path`` if it passes every check, else None (with a warning saying why)."""
    if not path.exists():
        return None
    why = None
    try:
        meta = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        meta, why = None, "its sidecar is missing or unreadable"
    if why is None and not isinstance(meta, dict):
        why = "its sidecar is not a JSON object"
    elif why is None and meta.get("sha256") != hashlib.sha256(path.read_bytes()).hexdigest():
        why = "its bytes do not match their checksum"
    elif why is None and meta.get("keys") != list(keys):
        why = f"it holds other runs ({meta.get('keys')}) than {list(keys)}"
    elif why is None and not (isinstance(meta.get("step"), int) and 1 <= meta["step"] < steps):
        why = f"its step {meta.get('step')!r} lies outside the run's 1..{steps - 1}"
    state = None
    if why is None:
        try:
            state = safe_torch_load(path, map_location=map_location)
        except Exception as exc:  # any unreadable payload is a damaged checkpoint
            why = f"it cannot be read ({type(exc).__name__})"
    if why is None and (not isinstance(state, dict) or state.get("step") != meta["step"]
                        or state.get("keys") != list(keys)):
        why = "its content disagrees with its sidecar"
    if why is not None:
        log.warning("replab train: checkpoint %s discarded: %s", path, why)
        return None
    return state


def load(folder: Path | None, keys: list[str], steps: int, map_location="cpu") -> dict | None:
    """The newest good checkpoint of the runs ``keys`` in ``folder``, or None (start from scratch)."""
    if folder is None:
        return None
    for name in (LAST, PREVIOUS):
        state = _verified(Path(folder) / name, keys, steps, map_location)
        if state is not None:
            return state
    return None


def remove(folder: Path | None) -> None:
    """Delete the checkpoints of ``folder`` (the run is stored) and the folder when it is left empty."""
    if folder is None:
        return
    folder = Path(folder)
    for name in (LAST, PREVIOUS):
        for path in (folder / name, _sidecar(folder / name)):
            if path.exists():
                path.unlink()
    try:
        folder.rmdir()
    except OSError:
        pass
