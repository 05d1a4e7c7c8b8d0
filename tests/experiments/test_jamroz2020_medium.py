"""The `medium` profile of Jamroż et al. (2020): every model at its medium size takes a training step on CPU (shapes,
not numbers), and the pages resolve at medium only on the paper's datasets."""
import dataclasses

import pytest
import torch

from replab import profiles
from replab.data import stand_ins
from replab.experiments import jamroz2020 as jamroz
from replab.experiments import jamroz2020_vae as jv
from replab.models import build

PAGES = {"jamroz2020/01-memorisation": "cifar10", "jamroz2020/02-regularisation": "cifar10",
         "jamroz2020/03-vae-latent-complexity": "celeba", "jamroz2020/04-latent-dependence": "celeba",
         "jamroz2020/05-better-samples": "celeba"}
SPLITS = {"cifar10": 50_000, "celeba": 162_770}       # training images of the paper's splits


@pytest.fixture
def paper_data(monkeypatch):
    """The paper's datasets as if their files were there: split sizes and targets, no images."""
    monkeypatch.setattr(jamroz, "train_size", SPLITS.__getitem__)
    monkeypatch.setattr(jv, "train_size", SPLITS.__getitem__)
    targets = {"cifar10": ("cross_entropy", 10), "celeba": ("binary_cross_entropy", 40)}
    monkeypatch.setattr(jamroz, "classifier_targets", targets.__getitem__)


@pytest.fixture(autouse=True)
def no_policy():
    yield
    stand_ins.configure(None)


def _one_step(model, x, loss_of, lr=1e-3):
    before = [p.detach().clone() for p in model.parameters()]
    out = model(x)
    loss = loss_of(out)
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=lr).step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    return out


def _medium(name):
    return profiles.resolve(name, "medium")


@pytest.mark.parametrize("regulariser", ["none", "both"])
def test_medium_cnns_are_the_papers_11_layer_nets_and_take_a_step(paper_data, regulariser):
    m, r = _medium("jamroz2020.memorisation"), _medium("jamroz2020.regularisation")
    assert (m.dataset, m.depth, m.width, m.d) == ("cifar10", 11, 512, 0) and r.depth == 11
    assert set(r.widths) == {128, 512} and m.n_nets == r.n_nets == 20 and m.n_nets % m.n_groups == 0
    torch.manual_seed(0)
    for width in r.widths:
        cfg = jamroz.cnn_config(r, width, regulariser=regulariser, device="cpu")
        assert cfg.model.layout == jamroz.vgg_layout(11, width) and cfg.model.image_size == 32
        assert cfg.n == r.n_train and cfg.steps == r.epochs * (r.n_train // r.batch_size)
        x, y = torch.randn(2, 3, 32, 32), torch.tensor([1, 7])
        out = _one_step(build(cfg.model), x, lambda logits: torch.nn.functional.cross_entropy(logits, y))
        assert out.shape == (2, 10)
    cfg = jamroz.cnn_config(m, m.width, labels="random", device="cpu")
    assert cfg.random_labels and cfg.steps == 10 * (10_000 // 128)


def test_medium_sweep_is_the_papers_wae_on_celeba_and_takes_a_step(paper_data):
    v, q = _medium("jamroz2020.vae"), _medium("jamroz2020.quality")
    assert (v.dataset, v.arch, v.latent_dim) == ("celeba", "wae", 64) and min(v.betas) == 0.01
    assert max(v.betas) == 1000.0 and v.n_seeds == 3
    torch.manual_seed(0)
    for objective in ("beta_vae", "mmd_vae"):
        cfg = jv.vae_config(v, objective, 1.0, device="cpu")
        assert cfg.steps == v.epochs * (v.n_train // v.batch_size) == 400
        x = torch.rand(2, 3, 64, 64)
        out = _one_step(build(cfg.model), x, lambda o: ((o.recon - x) ** 2).sum() + o.mu.pow(2).sum())
        assert out.recon.shape == x.shape and out.z.shape == (2, 64)
    # the Fréchet classifier: the 11×512 net learning CelebA's 40 attributes
    training = jamroz.CNNTraining(v.dataset, q.classifier_depth, q.classifier_n_train, q.classifier_epochs,
                                  q.classifier_batch_size, 0.01)
    cfg = jamroz.cnn_config(training, q.classifier_width, device="cpu")
    assert cfg.objective == "binary_cross_entropy" and cfg.model.image_size == 64
    attributes = torch.randint(0, 2, (2, 40)).float()
    out = _one_step(build(cfg.model), torch.randn(2, 3, 64, 64),
                    lambda logits: torch.nn.functional.binary_cross_entropy_with_logits(logits, attributes))
    assert out.shape == (2, 40)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_medium_pages_stop_without_the_papers_files(page, monkeypatch):
    monkeypatch.setattr(stand_ins, "_present", lambda name, root=None: False)
    dataset = PAGES[page]
    hint = "replab data fetch cifar10" if dataset == "cifar10" else "replab data fetch celeba"
    with pytest.raises(stand_ins.MissingDataset, match=f"{dataset}: its files are not in the data folder") as err:
        profiles.resolve_page(page, "medium", {})
    assert hint in str(err.value) and "'medium'" in str(err.value)
    # CIFAR-10 and CelebA have no offline stand-in: stand_ins=True cannot run the page either
    with pytest.raises(stand_ins.MissingDataset, match="no offline stand-in exists") as err:
        profiles.resolve_page(page, "medium", {"stand_ins": True})
    assert hint in str(err.value)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_medium_pages_name_the_papers_datasets(page, monkeypatch):
    monkeypatch.setattr(stand_ins, "_present", lambda name, root=None: True)
    for allow in (None, True):
        resolved = profiles.resolve_page(page, "medium", {"stand_ins": allow})
        datasets = {cfg.dataset for cfg in resolved if dataclasses.is_dataclass(cfg) and hasattr(cfg, "dataset")}
        assert datasets == {PAGES[page]} and stand_ins.used() == {}
    # a stand-in named by hand is refused at medium unless the reader allows it, and then recorded
    with pytest.raises(stand_ins.StandInRefused, match="mnist10k is an offline stand-in"):
        profiles.resolve_page(page, "medium", {"dataset": "mnist10k"})
    resolved = profiles.resolve_page(page, "medium", {"dataset": "mnist10k", "stand_ins": True})
    assert resolved[0].dataset == "mnist10k" and "mnist10k" in stand_ins.used()


def test_dpgmms_fitted_over_processes_are_those_fitted_here():
    """The medium pages fit their DP-GMMs over `n_jobs` processes: the same chains as one after another."""
    sizes = profiles.resolve("jamroz2020.memorisation", "smoke")
    g = torch.Generator().manual_seed(0)
    points = {"conv.1": torch.randn(60, 3, generator=g, dtype=torch.float64),
              "conv.2": 3 * torch.randn(90, 4, generator=g, dtype=torch.float64)}
    here = jamroz.fit_dpgmms(list(points.values()), sizes, [0, 1])
    spread = jamroz.fit_dpgmms(list(points.values()), sizes, [0, 1], n_jobs=2)
    for a, b in zip(here, spread):
        assert torch.equal(a.assignments_, b.assignments_) and torch.equal(a.alpha_trace_, b.alpha_trace_)
    assert jamroz.layer_complexity(points, sizes, seed=2).equals(jamroz.layer_complexity(points, sizes, 2, 2))
    with pytest.raises(ValueError, match="seeds: expected one per point set"):
        jamroz.fit_dpgmms(list(points.values()), sizes, [0])
