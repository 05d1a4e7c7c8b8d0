"""Stand-ins: allowed at smoke and quick, refused at medium and full unless the reader asks, and then said on every
claim and figure (replab.data.stand_ins, profiles.resolve_page)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import matplotlib
import pytest

from replab import claims, data, evidence, profiles
from replab.data import stand_ins
from replab.data.stand_ins import MissingDataset, StandInRefused

matplotlib.use("Agg")
profiles.page_experiments("00-datasets")   # register the real experiments before a test swaps in a private registry

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")


@pytest.fixture
def empty_data(tmp_path, monkeypatch):
    """An empty data folder, and the policy of no page afterwards."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("REPLAB_DATA", str(root))
    yield root
    stand_ins.configure(None)


def test_outside_a_page_nothing_is_substituted_or_refused(empty_data):
    stand_ins.configure(None)
    assert stand_ins.choose("mnist") == "mnist" and stand_ins.choose("mnist10k", "cifar10") == "mnist10k"
    assert len(data.load("mnist10k", split="test")) == 2000
    with pytest.raises(FileNotFoundError):
        data.load("mnist")
    assert stand_ins.used() == {} and stand_ins.note() is None


def test_a_refusing_policy_names_the_fetch_command(empty_data):
    stand_ins.configure(False)
    with pytest.raises(StandInRefused, match=r"mnist10k is an offline stand-in for mnist.*replab data fetch mnist"):
        stand_ins.choose("mnist10k", "mnist", profile="profile 'medium'")
    with pytest.raises(MissingDataset, match=r"cifar10: its files are not in the data folder.*replab data fetch "
                                             r"cifar10"):
        stand_ins.choose("cifar10")
    with pytest.raises(MissingDataset, match=r"stand_ins=True to run on the stand-in mnist10k"):
        stand_ins.choose("mnist")
    with pytest.raises(StandInRefused, match="the dSprites generator is an offline stand-in for dsprites"):
        stand_ins.choose("dsprites")
    with pytest.raises(StandInRefused):      # the loader refuses too, whatever calls it
        data.load("symsol_solids", split="test")
    assert stand_ins.used() == {}


def test_real_files_present_are_used_under_any_policy(empty_data):
    for name in MNIST_FILES:
        (empty_data / name).write_bytes(b"")     # names only: choose looks at names, the loader at contents
    (empty_data / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz").write_bytes(b"")
    for allow in (False, True):
        stand_ins.configure(allow)
        assert stand_ins.choose("mnist") == "mnist" and stand_ins.choose("dsprites") == "dsprites"
        assert stand_ins.used() == {}


def test_an_allowing_policy_substitutes_records_and_warns(empty_data):
    stand_ins.configure(True)
    with pytest.warns(UserWarning, match="using the stand-in mnist10k"):
        assert stand_ins.choose("mnist") == "mnist10k"
    assert stand_ins.choose("mnist10k", "cifar10") == "mnist10k"     # already recorded as a stand-in for mnist
    assert stand_ins.choose("symsol_solids", "symsol") == "symsol_solids"
    assert stand_ins.choose("dsprites") == "dsprites"
    with pytest.raises(MissingDataset, match="no offline stand-in exists"):
        stand_ins.choose("cifar10")
    with pytest.warns(UserWarning, match="left out"):
        assert stand_ins.choose("cars3d", optional=True) is None
    assert stand_ins.used() == {"mnist10k": "mnist", "symsol_solids": "symsol", "dsprites (generated)": "dsprites",
                                "no cars3d": "cars3d"}
    assert stand_ins.note().startswith("stand-in data: mnist10k for mnist; symsol_solids for symsol")
    stand_ins.configure(True)                 # the next page starts afresh
    assert stand_ins.used() == {}


def test_the_policy_is_checked():
    with pytest.raises(ValueError, match="stand_ins: expected True, False or None"):
        stand_ins.configure("yes")


_TABLES = "\n".join(f"""
[toy.data.{p}]
one = "{one}"
each = [{each}]
pair = [{pair}]
""" for p, one, each, pair in [
    ("smoke", "mnist10k", '"dsprites"', '"dsprites", "symsol_solids"'),
    ("quick", "mnist10k", '"dsprites"', '"dsprites", "symsol_solids"'),
    ("full", "mnist", '"dsprites", "cars3d", "smallnorb"', '"cars3d", "celeba"'),
])


def _declare():
    @profiles.experiment("toy.data", pages=("toy/data-page",))
    @dataclass(frozen=True)
    class ToyData:
        one: str = profiles.size("the training set", dataset="one")
        each: tuple[str, ...] = profiles.size("the sets compared", dataset="each")
        pair: tuple[str, ...] = profiles.size("(target, source)", dataset="pair")

    return ToyData


def test_resolve_page_follows_each_profiles_rule(folder, empty_data):
    (folder / "toy.toml").write_text(_TABLES)
    _declare()
    (quick,) = profiles.resolve_page("toy/data-page", "quick", {})
    assert (quick.one, quick.each, quick.pair) == ("mnist10k", ("dsprites",), ("dsprites", "symsol_solids"))
    assert stand_ins.used() == {"mnist10k": "mnist", "dsprites (generated)": "dsprites", "symsol_solids": "celeba"}
    for profile in ("medium", "full"):
        with pytest.raises(MissingDataset, match=f"mnist: .*profile '{profile}' runs only on the papers' datasets"):
            profiles.resolve_page("toy/data-page", profile, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (medium,) = profiles.resolve_page("toy/data-page", "medium", {"stand_ins": True})
    # with stand_ins=True: a stand-in where one exists, a list member without one left out, a pair emptied
    assert (medium.one, medium.each, medium.pair) == ("mnist10k", ("dsprites",), ())
    with pytest.raises(StandInRefused, match="stand_ins=True"):
        profiles.resolve_page("toy/data-page", "quick", {"stand_ins": False})
    assert profiles.allows_stand_ins("quick") and not profiles.allows_stand_ins("medium")


def test_claims_and_figures_say_which_stand_ins_a_run_used(empty_data, tmp_path):
    from replab.plotting import bar_counts

    stand_ins.configure(True)
    stand_ins.choose("mnist10k", "mnist")
    rec = claims.Recorder("toy/page", "quick", directory=tmp_path / "claims")
    effect = evidence.Effect(name="toy", estimate=1.0, low=0.5, high=1.5, n={"seeds": 3})
    c = rec.add_effect("replab", "toy-claim", "a toy claim", effect, source="Fig. 1")
    assert c.stand_ins == {"mnist10k": "mnist"}
    assert claims.load_all(tmp_path / "claims")[0].stand_ins == {"mnist10k": "mnist"}
    assert rec.table()["stand-in data"].tolist() == ["mnist10k for mnist"]
    assert _notes(rec.figure()) == ["stand-in data: mnist10k for mnist"]
    fig = bar_counts([3, 1], title="toy").figure
    assert _notes(fig) == ["stand-in data: mnist10k for mnist"]
    fig.savefig(tmp_path / "fig.png", bbox_inches="tight")     # placed under the axes when drawn
    text = claims.scorecard_markdown(claims.load_all(tmp_path / "claims"), others={"medium": [c]})
    assert "offline stand-ins for the papers' datasets" in text and "mnist10k for mnist (1 claim)" in text
    assert "reproduced *(stand-in)*" in text
    stand_ins.configure(False)
    assert _notes(bar_counts([3, 1]).figure) == []


def _notes(fig) -> list[str]:
    return [a.get_text() for a in [*fig.texts, *fig.artists] if hasattr(a, "get_text") and "stand-in" in a.get_text()]


def test_a_page_that_names_no_dataset_has_no_policy(empty_data):
    stand_ins.configure(True)
    profiles.resolve_page("00-datasets", "medium", {})      # the tour of the offline sets themselves
    assert stand_ins.allowed() is None
    assert len(data.load("digits", split="test")) > 0 and stand_ins.used() == {}
