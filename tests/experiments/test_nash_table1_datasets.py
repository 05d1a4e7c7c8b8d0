"""The paper's other datasets (pages 1 and 2 at `full`): SVHN gets classifiers and inversion models of its own,
trained on its whole splits, measured like MNIST (Fig. 5a's bounds, Table 1); a dataset that did not run gives
claims without an interval."""
import numpy as np
import pytest
from scipy.io import savemat

from replab import profiles
from replab.data import stand_ins
from replab.experiments import nash, nash_effects

PAGE = "nash2019/02-representation-space"


@pytest.fixture(autouse=True)
def _policy_reset():
    yield
    stand_ins.configure(None)  # the policy a page resolves is process-wide


@pytest.fixture
def svhn_root(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for name, n in (("train_32x32.mat", 24), ("test_32x32.mat", 5)):
        savemat(tmp_path / name, {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                                  "y": rng.integers(1, 11, (n, 1)).astype(np.uint8)})
    monkeypatch.setenv("REPLAB_DATA", str(tmp_path))
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_svhn_gets_its_own_models_on_its_whole_splits_and_the_claims_read_it(svhn_root, monkeypatch):
    M, R = profiles.resolve_page(PAGE, "smoke", {"more_datasets": ["svhn"]})
    assert M.more_datasets == ("svhn",) and (M.more_n_train, M.more_n_test) == (0, 0)
    asked, real = [], nash.trained_classifier
    monkeypatch.setattr(nash, "trained_classifier", lambda m, seed=0: asked.append(m) or real(m, seed))
    inversions = nash.other_inversions(M, seed=0)
    others = nash.other_datasets(M, R, seed=0)
    # the other dataset's own classifiers, on all 24 training and 5 test images, the rest of M's sizes kept; the
    # two pages ask for the same ones
    assert [(m.dataset, m.n_train, m.n_test, m.clf_steps) for m in asked] == [("svhn", 24, 5, M.clf_steps)] * 2
    assert asked[0] == asked[1]
    inv = inversions["svhn"]
    assert list(inv.table.index) == list(nash.LAYERS) and inv.h_x.shape == (M.n_seeds, 5)
    fig5a = nash_effects.other_inversion_effects(inversions)
    nce = [inv.nll[layer].mean() for layer in nash.LAYERS]  # NLLs: the NCE falls as they rise
    assert fig5a["svhn-falls"].estimate == pytest.approx(min(b - a for a, b in zip(nce, nce[1:])))
    assert fig5a["svhn-falls"].low is not None and fig5a["cifar10-largest"].low is None
    check = others["svhn"]
    assert list(check.table.index) == list(nash.TABLE1_LAYERS)
    assert check.images.shape == (R.n_images, 3, 32 // M.factor, 32 // M.factor)  # colour, coarse like MNIST's
    for layer in nash.TABLE1_LAYERS:
        for name in ("1NN", "IM-S", "IM-NN"):
            d = check.distances[layer][name]
            assert d.shape == (M.n_seeds, R.n_images) and np.isfinite(d).all() and (d >= 0).all()
        # the closest of several samples is never farther than the first one
        assert (check.distances[layer]["IM-NN"] <= check.distances[layer]["IM-S"] + 1e-12).all()
    frame = nash.table1_frame({"mnist10k": check, **others})
    assert list(frame.index.get_level_values("dataset").unique()) == ["mnist10k", "svhn"]
    effects = nash_effects.other_dataset_effects(others)
    assert effects["svhn"].low is not None and effects["svhn"].side == "less"
    ratios = [check.distances[layer]["IM-NN"].mean() / check.distances[layer]["1NN"].mean()
              for layer in nash.TABLE1_LAYERS]
    assert effects["svhn"].estimate == pytest.approx(max(ratios))
    # CIFAR-10 did not run: no interval, and the effect says why
    assert effects["cifar10-fc3"].low is None and "cifar10" in effects["cifar10-fc3"].why
    assert effects["cifar10-fc3"].side == "greater"


def test_without_the_files_full_stops_naming_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLAB_DATA", str(tmp_path))
    with pytest.raises(Exception, match=r"replab data fetch"):
        profiles.resolve_page(PAGE, "full", {})
