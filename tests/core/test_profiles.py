import pytest

from replab import profiles


def test_every_experiment_declares_all_profiles_with_same_keys():
    names = profiles.experiments()
    assert "datasets" in names
    for name in names:
        t = profiles.table(name)
        assert set(t) == set(profiles.PROFILES)
        assert set(t["smoke"]) == set(t["quick"]) == set(t["full"])


def test_resolve_uses_profile_values_and_overrides():
    smoke = profiles.resolve("datasets", "smoke")
    quick = profiles.resolve("datasets", "quick")
    assert smoke.n == profiles.table("datasets")["smoke"]["n"]
    assert quick["n"] == profiles.table("datasets")["quick"]["n"]
    assert profiles.resolve("datasets", "smoke", n=7).n == 7
    assert profiles.resolve("datasets", "smoke", n=None).n == smoke.n  # None means "the profile's value"


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown profile 'huge'; choose one of smoke, quick, full"):
        profiles.resolve("datasets", "huge")


def test_unknown_parameter_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['width'\] for experiment 'datasets'"):
        profiles.resolve("datasets", "quick", width=3)


def test_unknown_experiment_lists_known():
    with pytest.raises(KeyError, match="unknown experiment 'nope'"):
        profiles.resolve("nope", "quick")


def test_unknown_size_attribute():
    with pytest.raises(AttributeError, match="has no size 'zzz'"):
        profiles.resolve("datasets", "quick").zzz
