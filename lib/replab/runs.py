"""Recorded runs: which commit, device and library versions produced the claims kept under ``results/<profile>/``.

``replab run-all --profile medium --record`` executes pages and keeps, per page, the claims it recorded
(``results/<profile>/claims/<page>.json``) and one run record (``results/<profile>/runs/<page>.json``): the
commit, whether the working tree had uncommitted changes, the device, the torch and Python versions, the wall
time and whether the page finished. The scorecard reads the claims; the run records say where they came from.
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
from pathlib import Path

from .cache import atomic_write_bytes, repo_root

__all__ = ["provenance", "record_run", "load_runs"]


def _git(*args: str, cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance(root: Path | None = None) -> dict:
    """Where a run happens: ``commit`` (or ``REPLAB_COMMIT`` when the tree is no git checkout), ``dirty``,
    ``device``, ``torch``, ``cuda``, ``python`` and the UTC ``date``."""
    import os

    import torch

    from .claims import hardware

    root = Path(root) if root is not None else (repo_root() or Path.cwd())
    commit = _git("rev-parse", "HEAD", cwd=root) or os.environ.get("REPLAB_COMMIT")
    status = _git("status", "--porcelain", "--untracked-files=no", cwd=root)
    return {"commit": commit, "dirty": bool(status) if status is not None else None, "device": hardware(),
            "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def record_run(results: str | Path, page: str, profile: str, wall_s: float, ok: bool,
               info: dict | None = None) -> Path:
    """Write the run record of ``page`` at ``profile`` under ``results/runs/`` (atomically); returns its path."""
    if wall_s < 0:
        raise ValueError(f"wall_s must be a duration in seconds, got {wall_s}")
    record = {"page": page, "profile": profile, "wall_s": round(float(wall_s), 1), "status": "ok" if ok else
              "failed", **(info if info is not None else provenance())}
    path = Path(results) / "runs" / f"{page.replace('/', '__')}.json"
    atomic_write_bytes(path, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())
    return path


def load_runs(results: str | Path) -> list[dict]:
    """Every run record under ``results/runs`` (none when the folder does not exist); a record that is not a
    JSON object raises a ``ValueError`` naming the file."""
    out = []
    for path in sorted((Path(results) / "runs").glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"run record {path} is not valid JSON ({exc})") from None
        if not isinstance(record, dict) or "page" not in record:
            raise ValueError(f"run record {path} must be a JSON object with a 'page'")
        out.append(record)
    return out
