"""Every page runs end to end at the smoke profile through papermill (pytest-xdist spreads them over cores)."""
import json
from pathlib import Path

import pytest

from replab.notebooks import discover, execute

ROOT = Path(__file__).resolve().parents[2]
PAGES = discover(ROOT / "notebooks")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    # One artifact cache for the whole run, so pages that share a trained model train it once.
    return ROOT / ".cache" / "replab-smoke"


@pytest.mark.notebook
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_runs_at_smoke(page, tmp_path, shared_cache):
    out = tmp_path / "out.ipynb"
    env = {"REPLAB_CLAIMS": str(tmp_path / "claims"), "REPLAB_CACHE": str(shared_cache),
           "OMP_NUM_THREADS": "1", "REPLAB_QUIET": "1",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    execute(page.path, out, {"profile": "smoke"}, timeout=600, env=env)
    assert out.is_file()
    records = list((tmp_path / "claims").glob("*.json"))
    assert records, f"{page.name} recorded no claim"
    claims = json.loads(records[0].read_text())
    assert all(c["profile"] == "smoke" for c in claims)
