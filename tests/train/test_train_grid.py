"""Grids: expansion, skipping cached members, and a run on a two-worker Dask cluster."""
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from replab import models as M
from replab.cache import ArtifactCache
from replab.grid import InProcess, expand, load_grid, run_grid, train_runs
from replab.train import TrainConfig, train

BASE = TrainConfig(M.MLPConfig(latent_dim=2, hidden=(8,), input_shape=(1, 4, 4)), dataset="toy", batch_size=4,
                   steps=3, lr=1e-3)


def _images():
    return (torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5).to(torch.uint8) * 255


def test_expand_is_the_product_of_the_axes():
    grid = expand(BASE, objective=["beta_vae"], seed=[0, 1], params__beta=[1.0, 4.0])
    assert [(c.seed, c.objective_params["beta"]) for c in grid] == [(0, 1.0), (0, 4.0), (1, 1.0), (1, 4.0)]
    assert BASE.objective_params == {}


def test_cached_members_are_skipped(tmp_path):
    cache, data = ArtifactCache(tmp_path), _images()
    grid = expand(BASE, seed=[0, 1])
    train(grid[0], cache, data=data)
    with ThreadPoolExecutor(1) as pool:
        first = run_grid(grid + grid[1:], pool, cache, data=data)
        assert [m.status for m in first] == ["cached", "trained", "trained"]
        assert first[1].key == first[2].key  # the duplicate was trained once
        assert [m.status for m in run_grid(grid, pool, cache, data=data)] == ["cached", "cached"]
    runs = load_grid(grid + [expand(BASE, seed=[7])[0]], cache, data=data)
    assert runs[0] is not None and runs[1] is not None and runs[2] is None


def test_failures_are_reported(tmp_path):
    bad = TrainConfig(BASE.model, dataset="toy", batch_size=64, steps=2)  # larger than the data
    with ThreadPoolExecutor(1) as pool:
        members = run_grid([bad, BASE], pool, ArtifactCache(tmp_path), data=_images(), raise_errors=False)
        assert [m.status for m in members] == ["failed", "trained"]
        assert "batch_size=64 is larger than the dataset" in members[0].error
        with pytest.raises(ValueError, match="batch_size=64"):
            run_grid([bad], pool, ArtifactCache(tmp_path), data=_images())


@pytest.mark.slow
def test_the_default_executor_is_a_local_process_pool(tmp_path):
    grid, data, cache = expand(BASE, seed=[0, 1]), _images(), ArtifactCache(tmp_path)
    members = run_grid(grid, cache=cache, data=data, max_workers=2)  # two spawned worker processes
    assert [m.status for m in members] == ["trained", "trained"]
    local = train(grid[1], cache=False, data=data)
    remote = load_grid(grid, cache, data=data)[1]
    for k, v in local.model.state_dict().items():
        torch.testing.assert_close(remote.model.state_dict()[k], v, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_a_grid_runs_on_a_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    grid = expand(BASE, objective=["beta_vae", "dip_vae_ii"])
    data, cache = _images(), ArtifactCache(tmp_path)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cl, \
            distributed.Client(cl) as client:
        members = run_grid(grid, client, cache, data=data)
        assert [m.status for m in members] == ["trained"] * 2
        assert [m.status for m in run_grid(grid, client, cache, data=data)] == ["cached"] * 2
    local = train(grid[1], cache=False, data=data)  # the same numbers as in this process
    remote = load_grid(grid, cache, data=data)[1]
    for k, v in local.model.state_dict().items():
        torch.testing.assert_close(remote.model.state_dict()[k], v, rtol=1e-6, atol=1e-7)


def test_a_grid_runs_through_submitit(tmp_path):
    submitit = pytest.importorskip("submitit")
    executor = submitit.AutoExecutor(folder=tmp_path / "jobs", cluster="debug")  # SLURM's interface, in-process
    cache = ArtifactCache(tmp_path / "cache")
    members = run_grid(expand(BASE, seed=[0, 1]), executor, cache, data=_images())
    assert [m.status for m in members] == ["trained", "trained"]
    assert all(r is not None for r in load_grid(expand(BASE, seed=[0, 1]), cache, data=_images()))


def test_in_process_jobs_run_when_their_result_is_asked_for():
    calls = []
    job = InProcess().submit(lambda *args: calls.append(args) or len(calls), 1, "a")
    assert calls == []
    assert job.result() == 1 and calls == [(1, "a")]


def test_train_runs_trains_in_process_then_loads_from_the_cache(tmp_path, monkeypatch):
    import replab.grid as grid

    calls, real = [], grid.run_grid
    monkeypatch.setattr(grid, "run_grid", lambda configs, **kw: calls.append(kw) or real(configs, **kw))
    configs = expand(TrainConfig(M.MLPConfig(latent_dim=2, hidden=(8,)), dataset="synthetic", batch_size=8,
                                 steps=3, lr=1e-3), seed=[0, 1])
    cache = ArtifactCache(tmp_path)
    runs = train_runs(configs, cache=cache)
    assert len(calls) == 1 and isinstance(calls[0]["executor"], InProcess)
    assert [r.config.seed for r in runs] == [0, 1] and all(cache.exists("train", c) for c in configs)
    alone = train(configs[1], cache=False)  # the same numbers as one run trained by itself
    for k, v in alone.model.state_dict().items():
        torch.testing.assert_close(runs[1].model.state_dict()[k], v)
    assert [m.status for m in real(configs, cache=cache)] == ["cached", "cached"]
    hits = cache.hits
    again = train_runs(configs[:1], cache=cache)[0]  # loaded, not trained again
    assert cache.hits > hits and again.key == runs[0].key
    with pytest.raises(ValueError, match="n_jobs: expected a positive integer"):
        train_runs(configs, n_jobs=0, cache=cache)
