"""Pages at ``full`` on real-format files: the Jamroż et al. sample-quality pages on a small CelebA folder.

At ``full`` these pages read CelebA; its Fréchet classifier learns the 40 binary attributes of
``list_attr_celeba.txt``. Here the folder has 48 images and 3 attributes and every size is overridden to seconds,
so the run shows the page's ``full`` path end to end: the claims that need the classifier are measured, with an
interval over the VAEs' seeds (at these sizes the verdict itself may be anything, inconclusive included).
"""
import json

import pytest

from replab.notebooks import execute

TINY = {"profile": "full", "widths": [8, 8, 8, 8], "latent_dim": 3, "betas": [0.1, 10.0], "epochs": 1,
        "batch_size": 12, "n_sweeps": 6, "burn_in": 2, "thin": 2, "n_samples": 200, "n_show": 4, "n_quality": 12,
        "classifier_depth": 8, "classifier_width": 8, "classifier_epochs": 2, "classifier_batch_size": 12,
        "n_seeds": 2}
QUALITY_CLAIMS = {"04-latent-dependence": ["mmd-samples-need-dependence"],
                  "05-better-samples": ["dpgmm-codes-better-fd", "dpgmm-codes-more-confident"]}


@pytest.mark.notebook
@pytest.mark.parametrize("page", sorted(QUALITY_CLAIMS))
def test_sample_quality_pages_measure_celeba_at_full(page, tmp_path, write_celeba):
    write_celeba(tmp_path / "data")
    env = {"REPLAB_CLAIMS": str(tmp_path / "claims"), "REPLAB_CACHE": str(tmp_path / "cache"),
           "REPLAB_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1", "REPLAB_QUIET": "1"}
    execute(f"jamroz2020/{page}", tmp_path / "out.ipynb", TINY, timeout=600, env=env)
    (record,) = (tmp_path / "claims").glob("*.json")
    claims = {c["claim_id"]: c for c in json.loads(record.read_text())}
    assert all(c["profile"] == "full" for c in claims.values())
    for cid in QUALITY_CLAIMS[page]:
        effect = claims[cid]["effect"]
        assert effect is not None and effect["low"] is not None and effect["n"].get("seeds") == 2, claims[cid]
    cells = json.loads((tmp_path / "out.ipynb").read_text())["cells"]
    outputs = json.dumps([cell.get("outputs", []) for cell in cells], ensure_ascii=False)
    assert "mean attribute accuracy" in outputs and "Fréchet distances skipped" not in outputs
