"""Verdicts must not depend on the processor: the same pages, run at ``smoke`` on torch's portable CPU kernels
(``ATEN_CPU_CAPABILITY=default``, no AVX2/AVX-512) and on the machine's own, record the same verdicts.

Each run has its own artifact cache, so the second trains its own models instead of loading the first's.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from replab import claims

ROOT = Path(__file__).resolve().parents[2]
# Two pages whose claims come from trained models and from seeded sampling.
PAGES = ("peste2017/01-active-components", "bonheme2023/01-metric-sanity")


def _run(tmp_path: Path, name: str, extra_env: dict) -> dict:
    env = {**os.environ, "REPLAB_QUIET": "1", "OMP_NUM_THREADS": "1", "REPLAB_CACHE": str(tmp_path / name / "cache"),
           **extra_env}
    if "ATEN_CPU_CAPABILITY" not in extra_env:
        env.pop("ATEN_CPU_CAPABILITY", None)  # the machine's own kernels, whatever the caller's setting
    res = subprocess.run([sys.executable, "-m", "replab.cli", "run-all", *PAGES, "--profile", "smoke",
                          "--results", str(tmp_path / name / "results"), "--output-dir", str(tmp_path / name / "out")],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    return {(c.page, c.claim_id): c for c in claims.load_all(tmp_path / name / "results" / "claims")}


@pytest.mark.notebook
def test_portable_and_native_kernels_give_the_same_verdicts(tmp_path):
    native = _run(tmp_path, "native", {})
    portable = _run(tmp_path, "portable", {"ATEN_CPU_CAPABILITY": "default"})
    assert native and set(native) == set(portable)
    differ = {key: (native[key].verdict, portable[key].verdict) for key in native
              if native[key].verdict != portable[key].verdict}
    assert not differ, f"verdicts that the processor's kernels flip: {differ}"
