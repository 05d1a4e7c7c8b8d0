"""Activation capture with forward hooks, against a manual forward pass."""
import pytest
import torch
from torch import nn

from replab.activations import capture
from replab.cache import ArtifactCache


def _net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
        nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.Dropout(0.5)),
        nn.Flatten(), nn.Linear(6 * 4 * 4, 5))


def _data(n=10):
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_matches_manual_forward_in_eval_mode_and_restores_training():
    net, x = _net(), _data()
    net.train()
    acts = capture(net, x, ["1", "2.1", "4"], batch_size=3, device="cpu")
    assert list(acts) == ["1", "2.1", "4"] and net.training
    net.eval()
    with torch.no_grad():
        h1 = net[1](net[0](x))
        h2 = net[2][1](net[2][0](h1))
        out = net(x)
    torch.testing.assert_close(acts["1"], h1.flatten(1))
    torch.testing.assert_close(acts["2.1"], h2.flatten(1))
    torch.testing.assert_close(acts["4"], out)
    assert acts["1"].dtype == torch.float32 and acts["1"].shape == (10, 4 * 8 * 8)


def test_gap_and_loader_input():
    net, x = _net(), _data(12)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(12)), batch_size=5)
    gap = capture(net, loader, ["1"], reduce="gap", device="cpu")["1"]
    flat = capture(net, x, ["1"], device="cpu")["1"]
    torch.testing.assert_close(gap, flat.reshape(12, 4, 64).mean(2))


class _WithRepresentations(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(3, 2)

    def forward(self, x):
        return self.enc(x)

    def representations(self, x):
        h = self.enc(x)
        return {"input": x, "mean": h, "output": h.sum(1)}


def test_models_exposing_representations():
    m, x = _WithRepresentations(), torch.randn(7, 3)
    acts = capture(m, x, batch_size=4, device="cpu")
    assert list(acts) == ["input", "mean", "output"] and acts["output"].shape == (7, 1)
    assert list(capture(m, x, ["mean"], device="cpu")) == ["mean"]
    with pytest.raises(ValueError, match=r"has no \['z'\]"):
        capture(m, x, ["z"], device="cpu")


def test_bad_arguments():
    net, x = _net(), _data()
    with pytest.raises(ValueError, match=r"^layers: model has no module named 'conv9'; known modules: 0, 1, 2"):
        capture(net, x, ["conv9"])
    with pytest.raises(ValueError, match=r"^reduce: expected one of"):
        capture(net, x, ["1"], reduce="max")
    with pytest.raises(ValueError, match=r"^layers: give the module names"):
        capture(net, x)


def test_cache_key_stores_and_reloads(tmp_path):
    net, x = _net(), _data()
    cache = ArtifactCache(tmp_path)
    a = capture(net, x, ["4"], cache_key={"model": "toy", "seed": 0}, cache=cache, device="cpu")
    b = capture(net, x, ["4"], cache_key={"model": "toy", "seed": 0}, cache=cache, device="cpu")
    assert cache.hits == 1 and cache.misses == 1
    torch.testing.assert_close(a["4"], b["4"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_model_runs_on_the_gpu_and_is_moved_back():
    net, x = _net(), _data()
    acts = capture(net, x, ["4"], device="cuda")
    assert all(p.device.type == "cpu" for p in net.parameters())
    net.eval()
    with torch.no_grad():
        want = net(x)
    torch.testing.assert_close(acts["4"], want, atol=1e-5, rtol=1e-4)


def test_large_captures_stream_to_the_cache_and_come_back_memory_mapped(tmp_path):
    net, x = _net(), _data()
    want = capture(net, x, ["1", "4"], device="cpu", batch_size=5)
    cache = ArtifactCache(tmp_path)
    key = {"model": "toy", "seed": 1}
    # a limit of a few hundred bytes: the first batch stays in memory, every later one is appended to disk
    got = capture(net, x, ["1", "4"], cache_key=key, cache=cache, device="cpu", batch_size=5, stream_mb=1e-4)
    folders = [p for p in (tmp_path / "activations").iterdir() if p.is_dir()]
    assert len(folders) == 1 and (folders[0] / "stream.json").is_file()
    assert not list((tmp_path / "activations").glob(".*partial"))  # the hidden work folder was renamed
    assert list(got) == ["1", "4"]
    for name in want:
        assert got[name].shape == want[name].shape
        torch.testing.assert_close(got[name], want[name])
    # reloaded from disk without running the model
    calls = []
    handle = net.register_forward_hook(lambda *a: calls.append(1))
    again = capture(net, x, ["1", "4"], cache_key=key, cache=cache, device="cpu", batch_size=5, stream_mb=1e-4)
    assert calls == []
    torch.testing.assert_close(again["4"], want["4"])
    # a truncated layer file is detected: the entry is dropped and recomputed
    raw = folders[0] / "1.f32"
    raw.write_bytes(raw.read_bytes()[:-4])
    fixed = capture(net, x, ["1", "4"], cache_key=key, cache=cache, device="cpu", batch_size=5, stream_mb=1e-4)
    handle.remove()
    assert calls  # the model ran again
    torch.testing.assert_close(fixed["4"], want["4"])
    with pytest.raises(ValueError, match="stream_mb"):
        capture(net, x, ["4"], cache_key=key, cache=cache, stream_mb=0)


def test_a_failed_capture_leaves_no_partial_stream(tmp_path):
    net, x = _net(), _data()
    cache = ArtifactCache(tmp_path)

    def batches():
        yield x[:5]
        yield x[5:10]
        raise RuntimeError("loader died")

    with pytest.raises(RuntimeError, match="loader died"):
        capture(net, batches(), ["4"], cache_key={"m": 2}, cache=cache, device="cpu", stream_mb=1e-5)
    assert [p.name for p in (tmp_path / "activations").iterdir() if not p.name.endswith(".lock")] == []


def test_streamed_captures_are_listed_by_the_cache(tmp_path):
    net, x = _net(), _data()
    cache = ArtifactCache(tmp_path)
    capture(net, x, ["4"], cache_key={"m": 3}, cache=cache, device="cpu", batch_size=5, stream_mb=1e-5)
    entries = [e for e in cache.entries() if e["kind"] == "activations"]
    assert len(entries) == 1 and entries[0]["intact"] and entries[0]["bytes"] == 4 * 10 * _net()(x).shape[1]
    assert cache.clear("activations") == 1 and not (tmp_path / "activations").exists()


def _vae(seed):
    from replab import models

    torch.manual_seed(seed)
    return models.build(models.Conv64Config(image_size=16, widths=(4, 4, 8, 8), hidden=16, latent_dim=3))


def test_a_vae_sampled_layer_draws_seeded_noise_per_model():
    from replab.activations import noise_seed

    a, b = _vae(0), _vae(1)
    x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert noise_seed(a) == noise_seed(_vae(0)) != noise_seed(b)
    with torch.no_grad():  # two collapsed posteriors, both N(0, I): their samples must still differ
        for m in (a, b):
            m.mean.weight.zero_(), m.mean.bias.zero_(), m.variance.weight.zero_(), m.variance.bias.zero_()
    ra, rb = capture(a, x, seed="weights", batch_size=3), capture(b, x, seed="weights", batch_size=3)
    assert not torch.allclose(ra["sampled"], rb["sampled"])
    assert torch.equal(ra["sampled"], capture(a, x, seed="weights", batch_size=3)["sampled"])
    assert torch.equal(capture(a, x, seed=5)["sampled"], capture(b, x, seed=5)["sampled"])
    # the collapsed posterior is N(0, I): the sampled layer is the generator's normal draws, batch by batch
    g = torch.Generator().manual_seed(5)
    expected = torch.cat([torch.randn(n, 3, generator=g) for n in (3, 3, 2)])
    torch.testing.assert_close(capture(a, x, seed=5, batch_size=3, device="cpu")["sampled"], expected)
    with pytest.raises(ValueError, match="seed"):
        capture(a, x, seed=1.5)


def test_a_seed_leaves_a_deterministic_model_unchanged():
    net, x = _net(), _data()
    torch.testing.assert_close(capture(net, x, ["4"], seed=3)["4"], capture(net, x, ["4"])["4"])
