"""The `medium` profile of Nash et al. (2019): each medium-sized model takes one training step on the CPU (shapes
only), the pages read the paper's datasets or, when asked, name their stand-ins, and the real affNIST is read from
its transformed canvases."""
import dataclasses
from types import SimpleNamespace

import pytest
import torch

from replab import profiles
from replab.data import ImageDataset, stand_ins
from replab.data.stand_ins import MissingDataset, StandInRefused
from replab.experiments import nash, nash_nets
from replab.inversion import LAYERS, runs
from replab.train import train

PAGES = {"nash2019/01-inverting-layers": "mnist10k", "nash2019/02-representation-space": "mnist10k",
         "nash2019/03-global-pooling": "affmnist", "nash2019/04-training-dynamics": "mnist10k"}


def _images(dataset: str, n: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *runs.image_shape(dataset)), generator=g).to(torch.uint8)


def _one_step(dataset: str, variant: str, sizes, layers, hidden_units: int = 2048) -> list:
    """One classifier update, then one update of the medium-sized inversion model of each of ``layers`` (``None``:
    unconditional), on two random images at the paper's size; the inversion models trained."""
    images, labels = _images(dataset), torch.tensor([3, 7])
    spec = runs.ClassifierSpec(dataset, variant, n_train=2, factor=1, steps=1, batch_size=2, n_test=2,
                               hidden_units=hidden_units)
    clf = train(runs.classifier_run(spec, device="cpu"), False, data=(images, labels)).model.eval()
    out = []
    for layer in layers:
        ctx = None if layer is None else clf.extract(images, layer)
        config = runs.inversion_run(spec, layer, SimpleNamespace(train=images),
                                    None if layer is None else clf.shapes[layer], n_filters=sizes.n_filters,
                                    n_res=sizes.n_res, max_dropout=sizes.inv_dropout, steps=1,
                                    batch_size=2, device="cpu")
        run = train(config, False, data=(images, ctx))
        assert run.model.config.n_filters == 64 and run.model.config.n_res == sizes.n_res
        assert run.model.config.dropout == pytest.approx(0.1)
        out.append(run)
    return out


def test_medium_models_of_pages_1_and_2_take_one_step():
    m = profiles.resolve(nash.Models, "medium")
    assert (m.factor, m.n_filters, m.n_train, m.n_test) == (1, 64, 60000, 10000)
    trained = _one_step("mnist", "conv", m, (*LAYERS, None))
    assert len(trained) == len(LAYERS) + 1


def test_medium_models_of_page_3_take_one_step():
    g = profiles.resolve(nash.GlobalPooling, "medium")
    assert (g.dataset, g.factor, g.hidden_units) == ("affnist", 1, 2048)
    for variant in nash.POOLING.values():
        (run,) = _one_step(g.dataset, variant, g, ("FC3",), hidden_units=g.hidden_units)
        assert run.model.config.image_shape == (1, 40, 40)


def test_medium_models_of_page_4_take_one_step():
    d = profiles.resolve(nash.TrainingDynamics, "medium")
    assert max(d.snapshots) == 10_000 and d.layers == ("FC3",)
    _one_step(d.dataset, "conv", d, d.layers)


def test_inversion_dropout_is_the_papers_capped_by_max_dropout():
    spec, colour = runs.ClassifierSpec("mnist10k"), runs.ClassifierSpec("cifar10")
    fake = SimpleNamespace(train=_images("mnist10k"))

    def rate(s, layer, cap):
        return runs.inversion_run(s, layer, fake, (4,), max_dropout=cap).model.dropout

    assert rate(spec, "FC3", None) == 0.5 and rate(spec, "FC3", 0.5) == 0.5 and rate(spec, "FC3", 0.1) == 0.1
    assert rate(colour, "CONV1", 0.5) == pytest.approx(0.1)          # Appendix A's 0.1 stays below the cap
    with pytest.raises(ValueError, match="max_dropout"):
        rate(spec, "FC3", 1.5)


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLAB_DATA", str(tmp_path))
    yield tmp_path
    stand_ins.configure(None)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_medium_pages_read_the_papers_data_or_name_their_stand_ins(page, no_data):
    with pytest.raises((MissingDataset, StandInRefused), match="replab data fetch"):
        profiles.resolve_page(page, "medium", {})
    with pytest.warns(UserWarning, match="stand-in"):
        configs = profiles.resolve_page(page, "medium", {"stand_ins": True})
    values = [getattr(c, f.name) for c in configs for f in dataclasses.fields(c) if f.metadata.get("dataset")]
    datasets = {d for v in values for d in ((v,) if isinstance(v, str) else v)}  # Table 1's others: none at medium
    assert datasets == {PAGES[page]}
    assert stand_ins.used() == {PAGES[page]: stand_ins.PAPER_OF[PAGES[page]]}


def test_page_3_names_its_dataset_per_profile():
    assert [profiles.resolve(nash.GlobalPooling, p).dataset for p in ("smoke", "quick", "medium", "full")] == \
        ["affmnist", "affmnist", "affnist", "affnist"]


def test_the_real_affnist_is_read_from_its_transformed_canvases(monkeypatch):
    calls = []

    def fake_load(name, split="train", **kwargs):
        calls.append((name, split, kwargs))
        n = 12 if split == "train" else 6
        return ImageDataset(_images("affnist", n).numpy(), labels=torch.arange(n) % 10, name=name)

    monkeypatch.setattr(runs._data, "load", fake_load)
    data = runs.coarse_data("affnist", 8, 4, 1)
    assert data.train.shape == (8, 1, 40, 40) and data.test.shape == (4, 1, 40, 40)
    assert calls == [("affnist", s, {"transformed": True, "batches": runs.AFFNIST_BATCHES}) for s in ("train", "test")]
    g = dataclasses.replace(profiles.resolve(nash.GlobalPooling, "smoke"), dataset="affnist", n_train=8, n_test=4,
                            factor=1, n_seeds=1)
    monkeypatch.setattr(runs, "classifier", lambda spec: (spec, 1.0))
    nets = nash_nets.affnist_classifiers(g)
    assert {spec.dataset for spec in nets.specs[0].values()} == {"affnist"}


def test_a_stand_in_smaller_than_the_papers_set_gives_all_it_holds():
    with pytest.warns(UserWarning, match="fewer than the 60000"):
        data = runs.coarse_data("mnist10k", 60000, 20, 4)
    assert len(data.train) < 60000 and len(data.test) == 20
