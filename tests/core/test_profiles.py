"""Typed experiments: every size declared once in a dataclass, valued per profile in TOML, checked in one place."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from replab import profiles
from replab.experiments.datasets import Tour


def _declare(name="toy.exp", pages=("toy/01-page",)):
    @profiles.experiment(name, pages=pages)
    @dataclass(frozen=True)
    class Toy:
        steps: int = profiles.size("optimiser steps", unit="steps")
        lr: float = profiles.size("learning rate")
        betas: tuple[float, ...] = profiles.size("β values")
        dataset: Literal["mnist", "dsprites"] = profiles.size("training set")
        cap: int | None = profiles.size("optional cap")

    return Toy


_GOOD = """
[toy.exp.smoke]
steps = 2
lr = 1
betas = [0.5, 2]
dataset = "mnist"
cap = 3
[toy.exp.quick]
steps = 20
lr = 1e-3
betas = [0.5, 1.0, 2.0]
dataset = "dsprites"
cap = 3
[toy.exp.full]
steps = 2000
lr = 1e-4
betas = [0.5]
dataset = "mnist"
cap = 3
"""


def test_profiles_are_read_from_the_file():
    assert profiles.names() == ("smoke", "quick", "medium", "full")
    assert profiles.default_profile() == "quick"


def test_resolve_gives_the_typed_dataclass_with_overrides():
    smoke = profiles.resolve("datasets", "smoke")
    assert isinstance(smoke, Tour) and smoke.n == profiles.table("datasets")["smoke"]["n"]
    assert profiles.resolve(Tour, "smoke", n=7).n == 7
    assert profiles.resolve(Tour, "smoke", n=None) == smoke          # None means "the profile's value"
    with pytest.raises(dataclasses.FrozenInstanceError):
        smoke.n = 3


def test_values_are_converted_to_the_declared_types(folder):
    (folder / "toy.toml").write_text(_GOOD)
    Toy = _declare()
    s = profiles.resolve("toy.exp", "smoke")
    assert s == Toy(steps=2, lr=1.0, betas=(0.5, 2.0), dataset="mnist", cap=3)
    assert isinstance(s.lr, float) and isinstance(s.betas, tuple)
    assert hash(s) == hash(profiles.resolve("toy.exp", "smoke"))   # hashable: usable in cache keys
    assert profiles.resolve(Toy, "quick", betas=[1, 3]).betas == (1.0, 3.0)


@pytest.mark.parametrize("override, message", [
    ({"steps": "ten"}, r"parameter 'steps' of toy.exp must be an int, got 'ten'"),
    ({"steps": 2.5}, r"must be an int, got 2.5"),
    ({"steps": True}, r"must be an int, got True"),
    ({"betas": [0.1, "x"]}, r"betas'? of toy.exp\[1\] must be a float"),
    ({"dataset": "cifar"}, r"must be one of 'mnist', 'dsprites', got 'cifar'"),
    ({"width": 3}, r"unknown parameter\(s\) \['width'\] for experiment 'toy.exp'"),
])
def test_bad_overrides_are_clear_errors(folder, override, message):
    (folder / "toy.toml").write_text(_GOOD)
    _declare()
    with pytest.raises(ValueError, match=message):
        profiles.resolve("toy.exp", "quick", **override)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("steps = 20\n", "steps = 20\nwidth = 3\n"), r"\[toy.exp.quick\] has unknown key 'width'"),
    (lambda t: t.replace("lr = 1e-4\n", ""), r"\[toy.exp.full\] lacks key\(s\) \['lr'\]"),
    (lambda t: t.replace('dataset = "dsprites"', "dataset = 3"), r"\[toy.exp.quick\] dataset must be one of"),
    (lambda t: t.replace("[toy.exp.full]", "[toy.exp.huge]"), r"\[toy.exp\] has table 'huge', which is not a "
                                                               r"profile"),
    (lambda t: t.replace("steps = 2\n", "steps = [2\n"), r"toy.toml: not valid TOML"),
])
def test_bad_tables_name_the_file_table_and_key(folder, edit, message):
    (folder / "toy.toml").write_text(edit(_GOOD))
    _declare()
    with pytest.raises(ValueError, match=message):
        profiles.table("toy.exp")


def test_a_profile_with_a_base_takes_what_it_leaves_out(folder):
    (folder / "profiles.toml").write_text((folder / "profiles.toml").read_text()
                                          + '\n[mid]\nmeaning = "one GPU"\nbase = "quick"\n')
    profiles._profiles.cache_clear()
    (folder / "toy.toml").write_text(_GOOD + "[toy.exp.mid]\nsteps = 500\n")
    _declare()
    assert profiles.names() == ("smoke", "quick", "medium", "full", "mid")
    medium = profiles.resolve("toy.exp", "mid")
    assert medium.steps == 500 and medium.betas == (0.5, 1.0, 2.0)


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown profile 'huge'; choose one of smoke, quick, medium, full"):
        profiles.resolve("datasets", "huge")
    with pytest.raises(ValueError, match=r"unknown profile"):
        profiles.check_profile(None)


def test_unknown_experiment_lists_known():
    with pytest.raises(ValueError, match="unknown experiment 'nope'; known experiments: .*datasets"):
        profiles.table("nope")


def test_declaring_needs_a_frozen_dataclass_with_meanings(folder):
    with pytest.raises(TypeError, match="must be a frozen dataclass"):
        profiles.experiment("toy.bad")(dataclass(type("Bad", (), {"__annotations__": {"n": int}})))
    with pytest.raises(TypeError, match=r"field 'n' of Bad needs profiles.size"):
        profiles.experiment("toy.bad")(dataclass(frozen=True)(type("Bad", (), {"__annotations__": {"n": int}})))
    with pytest.raises(TypeError, match="unsupported size type"):
        @profiles.experiment("toy.bad")
        @dataclass(frozen=True)
        class Bad:
            n: dict = profiles.size("a mapping")


def test_page_parameters_come_from_the_page_experiments(folder):
    (folder / "toy.toml").write_text(_GOOD)
    Toy = _declare()
    block = profiles.parameters_block("toy/01-page")
    assert block.splitlines()[0] == profiles.STAND_INS_LINE
    assert block.splitlines()[1].startswith(profiles.PARAMETERS_MARK)
    assert "steps = None" in block and "# optimiser steps [steps]" in block
    (toy,) = profiles.resolve_page("toy/01-page", "quick", {"steps": 5, "lr": None, "profile": "quick"})
    assert toy == profiles.resolve(Toy, "quick", steps=5)
    with pytest.raises(ValueError, match="parameter 'steps' of toy/01-page must be an int"):
        profiles.check_value("toy/01-page", "steps", "many")
    with pytest.raises(ValueError, match="declares no experiment"):
        profiles.resolve_page("toy/02-none", "quick", {})


def test_fields_describe_types_meanings_and_values():
    (f,) = profiles.fields("datasets")
    assert (f.name, f.type, f.unit) == ("n", "int", "images")
    assert set(f.values) == set(profiles.names())
    assert "examples shown" in profiles.describe("datasets")
