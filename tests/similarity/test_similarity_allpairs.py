"""similarity_grid (all models against all models) against cka_matrix on every pair, in tiles and after a restart."""
import numpy as np
import pandas as pd
import pytest
import torch

from replab.similarity import GRID_COLUMNS, cka_matrix, grid_table, similarity_grid
from replab.similarity import allpairs

CKA_MATRIX = {  # metric of the grid -> the same score from cka_matrix
    "linear_cka": dict(metric="linear_cka"),
    "debiased_cka": dict(metric="linear_cka", debiased=True),
    "rbf_cka": dict(metric="rbf_cka"),
    "procrustes": dict(metric="procrustes"),
}


def _models(widths, n=40, n_models=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 5, generator=g)
    return {f"m{k}": {f"l{i}": z @ torch.randn(5, w, generator=g) + torch.randn(n, w, generator=g) + k
                      for i, w in enumerate(widths)} for k in range(n_models)}


@pytest.mark.parametrize("widths", [(3, 5, 4), (8, 150, 40, 90)])  # narrow: feature route; wide: Gram route
def test_every_pair_equals_cka_matrix(widths):
    models = _models(widths)
    frame = similarity_grid(models, precision="float64", device="cpu")
    assert list(frame.columns) == GRID_COLUMNS
    names = list(models)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i:]]
    assert len(frame) == len(pairs) * len(widths) ** 2 * 4
    for metric, kwargs in CKA_MATRIX.items():
        for a, b in pairs:
            want = cka_matrix(models[a], None if a == b else models[b], precision="float64", **kwargs)
            got = grid_table(frame, a, b, metric)
            assert list(got.index) == list(want.index) and list(got.columns) == list(want.columns)
            np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=0, atol=1e-10)


def test_mixed_precision_is_within_float32_rounding_of_cka_matrix():
    models = _models((8, 150, 40, 90), n=60)
    frame = similarity_grid(models, metrics=["linear_cka", "debiased_cka"], pairs=[("m0", "m2")], device="cpu")
    for metric, debiased in (("linear_cka", False), ("debiased_cka", True)):
        want = cka_matrix(models["m0"], models["m2"], debiased=debiased, precision="float64")
        np.testing.assert_allclose(grid_table(frame, "m0", "m2", metric).to_numpy(), want.to_numpy(), atol=1e-6)


def test_tiles_under_a_small_budget_give_the_same_values_and_reduce_each_layer_once(monkeypatch):
    models = _models((8, 150, 40, 90))
    whole = similarity_grid(models, precision="float64", device="cpu")
    reduced = []
    original = allpairs._Metric.reduce
    monkeypatch.setattr(allpairs._Metric, "reduce", lambda self, block: reduced.append((self.name, *block))
                        or original(self, block))
    tiled = similarity_grid(models, precision="float64", device="cpu", memory_mb=0.1)  # 4 Grams of n = 40 per block
    assert tiled.attrs["tiles_computed"] > 4  # more than one tile per metric
    np.testing.assert_allclose(tiled.value.to_numpy(), whole.value.to_numpy(), rtol=0, atol=1e-12)
    for metric in allpairs.GRID_METRICS:  # every (model, layer) item reduced exactly once per metric
        items = sorted(i for name, *block in reduced if name == metric for i in block)
        assert items == list(range(12))


def _killed_after(k, monkeypatch, run):
    """``run()`` with the process 'killed' (an exception) when its (k + 1)-th tile starts; then restored."""
    calls = []
    original = allpairs._compute_tile

    def dies(*args):
        if len(calls) == k:
            raise RuntimeError("killed")
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(allpairs, "_compute_tile", dies)
    with pytest.raises(RuntimeError, match="killed"):
        run()
    monkeypatch.setattr(allpairs, "_compute_tile", original)


def test_a_killed_run_resumes_without_recomputing_finished_tiles(tmp_path, monkeypatch):
    models = _models((8, 150, 40, 90))
    settings = dict(metrics=["linear_cka", "procrustes"], precision="float64", device="cpu", memory_mb=0.1)
    clean = similarity_grid(models, **settings)
    total = clean.attrs["tiles_computed"]
    _killed_after(6, monkeypatch, lambda: similarity_grid(models, checkpoint=tmp_path / "run", **settings))
    resumed = similarity_grid(models, checkpoint=tmp_path / "run", **settings)
    assert resumed.attrs["tiles_loaded"] == 6 and resumed.attrs["tiles_computed"] == total - 6
    pd.testing.assert_frame_equal(resumed, clean, check_exact=False, rtol=0, atol=1e-12)
    again = similarity_grid(models, checkpoint=tmp_path / "run", **settings)  # finished: nothing is computed
    assert again.attrs["tiles_computed"] == 0 and again.attrs["blocks_reduced"] == 0
    changed = {**models, "m1": {**models["m1"], "l0": models["m1"]["l0"] + 1e-3}}
    with pytest.raises(ValueError, match=r"^checkpoint: .* holds the tiles of another run"):
        similarity_grid(changed, checkpoint=tmp_path / "run", **settings)
    leftovers = [p for p in (tmp_path / "run").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []  # every write was atomic


def test_chosen_pairs_and_orientation():
    models = _models((3, 60))
    frame = similarity_grid(models, metrics=["linear_cka"], pairs=[("m2", "m0"), ("m0", "m2"), ("m1", "m1")],
                            device="cpu")
    assert set(zip(frame.model_a, frame.model_b)) == {("m2", "m0"), ("m1", "m1")}
    np.testing.assert_allclose(grid_table(frame, "m0", "m2", "linear_cka").to_numpy(),
                               grid_table(frame, "m2", "m0", "linear_cka").to_numpy().T)
    no_self = similarity_grid(models, metrics=["linear_cka"], include_self=False, device="cpu")
    assert set(zip(no_self.model_a, no_self.model_b)) == {("m0", "m1"), ("m0", "m2"), ("m1", "m2")}
    with pytest.raises(ValueError, match=r"^grid_table: no 'procrustes' scores"):
        grid_table(frame, "m0", "m2", "procrustes")


def test_bad_inputs_name_the_problem():
    models = _models((3, 4))
    with pytest.raises(ValueError, match=r"^metrics: expected a non-empty subset"):
        similarity_grid(models, metrics=["cca"])
    with pytest.raises(ValueError, match=r"^models: expected a non-empty dict"):
        similarity_grid([models["m0"]])
    with pytest.raises(ValueError, match=r"^pairs: unknown model 'm9'"):
        similarity_grid(models, pairs=[("m0", "m9")])
    with pytest.raises(ValueError, match=r"^memory_mb: expected a finite positive number"):
        similarity_grid(models, memory_mb=0)
    short = {**models, "m1": {"l0": models["m1"]["l0"][:30], "l1": models["m1"]["l1"][:30]}}
    with pytest.raises(ValueError, match=r"^layer 'l0' of model 'm1': has 30 examples but the other layers have 40"):
        similarity_grid(short)
    with pytest.raises(ValueError, match=r"^layer 'l1' of model 'm2': contains NaN values"):
        similarity_grid({**models, "m2": {"l1": torch.full((40, 3), float("nan"))}})
    with pytest.raises(ValueError, match=r"^layer 'l0' of model 'm0': needs at least 4 examples"):
        similarity_grid({k: {n: t[:3] for n, t in v.items()} for k, v in models.items()})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    models = _models((8, 150, 40, 90))
    cpu = similarity_grid(models, precision="float64", device="cpu")
    gpu = similarity_grid(models, precision="float64", device="cuda", memory_mb=0.1)
    np.testing.assert_allclose(gpu.value.to_numpy(), cpu.value.to_numpy(), rtol=0, atol=1e-9)


def test_reductions_on_disk_are_reused_after_a_kill_and_removed_when_done(tmp_path, monkeypatch):
    models = _models((8, 150, 40, 90))
    settings = dict(metrics=["rbf_cka"], precision="float64", device="cpu", memory_mb=0.1)
    _killed_after(2, monkeypatch, lambda: similarity_grid(models, checkpoint=tmp_path, **settings))
    # 3 blocks of 4 layers; tiles (0, 0) and (0, 1) finished, (0, 2) died after its blocks were reduced
    kept = sorted(p.name for p in (tmp_path / "reductions" / "rbf_cka").glob("*.pt"))
    assert kept == ["block-0.pt", "block-1.pt", "block-2.pt"]
    resumed = similarity_grid(models, checkpoint=tmp_path, **settings)
    assert resumed.attrs["tiles_loaded"] == 2 and resumed.attrs["blocks_reduced"] == 0  # read back, not re-formed
    assert not (tmp_path / "reductions" / "rbf_cka").exists()
    np.testing.assert_allclose(resumed.value.to_numpy(),
                               similarity_grid(models, **settings).value.to_numpy(), rtol=0, atol=1e-12)
