"""Nash et al.'s Table 1 page with one of the paper's other datasets (SVHN, small files in its format): the page
shows a block per dataset and records the SVHN claim with an interval, the CIFAR-10 ones without."""
import json

import numpy as np
import pytest
from scipy.io import savemat

from replab.notebooks import execute


@pytest.mark.notebook
def test_table1_page_runs_svhn_beside_mnist(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "data").mkdir()
    for name, n in (("train_32x32.mat", 24), ("test_32x32.mat", 5)):
        savemat(tmp_path / "data" / name, {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                                           "y": rng.integers(1, 11, (n, 1)).astype(np.uint8)})
    env = {"REPLAB_CLAIMS": str(tmp_path / "claims"), "REPLAB_CACHE": str(tmp_path / "cache"),
           "REPLAB_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1", "REPLAB_QUIET": "1"}
    execute("nash2019/02-representation-space", tmp_path / "out.ipynb",
            {"profile": "smoke", "more_datasets": ["svhn"]}, timeout=600, env=env)
    (record,) = (tmp_path / "claims").glob("*.json")
    claims = {c["claim_id"]: c for c in json.loads(record.read_text())}
    assert claims["table1-svhn-im-nn-closer"]["effect"]["low"] is not None
    assert claims["table1-cifar10-fc3-exception"]["effect"]["low"] is None
    cells = json.loads((tmp_path / "out.ipynb").read_text())["cells"]
    outputs = json.dumps([cell.get("outputs", []) for cell in cells])
    assert "svhn" in outputs and "mnist10k" in outputs
