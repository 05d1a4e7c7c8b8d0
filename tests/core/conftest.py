"""Fixtures of the core tests."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from replab import profiles


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A private profiles folder (the real profiles.toml, tables written by the test) and a private registry."""
    shutil.copy(Path(profiles.__file__).parent / "profiles.toml", tmp_path / "profiles.toml")
    monkeypatch.setattr(profiles, "_HERE", tmp_path)
    monkeypatch.setattr(profiles, "_REGISTRY", dict(profiles._REGISTRY))
    monkeypatch.setattr(profiles, "_PAGES", {})
    for fn in (profiles._tables, profiles._profiles):
        fn.cache_clear()
    yield tmp_path
    for fn in (profiles._tables, profiles._profiles):
        fn.cache_clear()
