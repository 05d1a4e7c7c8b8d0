"""Nash et al.'s pages 1 and 2 with one of the paper's other datasets (SVHN, small files in its format): each page
shows SVHN beside MNIST and records its SVHN claims with an interval, the CIFAR-10 ones without."""
import json

import numpy as np
import pytest
from scipy.io import savemat

from replab.notebooks import execute

PAGES = {"01-inverting-layers": ("svhn-largest-drop-conv1-conv2", "cifar10-largest-drop-conv1-conv2"),
         "02-representation-space": ("table1-svhn-im-nn-closer", "table1-cifar10-fc3-exception")}


@pytest.mark.notebook
@pytest.mark.parametrize("page", sorted(PAGES))
def test_pages_run_svhn_beside_mnist(page, tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "data").mkdir()
    for name, n in (("train_32x32.mat", 24), ("test_32x32.mat", 5)):
        savemat(tmp_path / "data" / name, {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                                           "y": rng.integers(1, 11, (n, 1)).astype(np.uint8)})
    env = {"REPLAB_CLAIMS": str(tmp_path / "claims"), "REPLAB_CACHE": str(tmp_path / "cache"),
           "REPLAB_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1", "REPLAB_QUIET": "1"}
    execute(f"nash2019/{page}", tmp_path / "out.ipynb", {"profile": "smoke", "more_datasets": ["svhn"]},
            timeout=600, env=env)
    (record,) = (tmp_path / "claims").glob("*.json")
    claims = {c["claim_id"]: c for c in json.loads(record.read_text())}
    ran, absent = PAGES[page]
    assert claims[ran]["effect"]["low"] is not None
    assert claims[absent]["effect"]["low"] is None and "cifar10" in claims[absent]["effect"]["why"]
    cells = json.loads((tmp_path / "out.ipynb").read_text())["cells"]
    assert "svhn" in json.dumps([cell.get("outputs", []) for cell in cells])
