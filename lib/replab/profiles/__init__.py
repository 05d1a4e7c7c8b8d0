"""Profiles: the sizes of every experiment at ``smoke``, ``quick`` and ``full``, in one place.

Each paper has one table file beside this module (``<paper>.toml``); each experiment in it declares the same
keys for the three profiles::

    [bonheme2023.metric-sanity.smoke]
    n_features = 50
    ...

``smoke`` runs in seconds (tests), ``quick`` is the book's default (the whole book on 2 CPU cores in well under
30 minutes), and ``full`` is the paper's own setting, meant for a GPU. Notebooks resolve their sizes with
:func:`resolve`, where any parameter the reader gives (not ``None``) overrides the profile's value.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

PROFILES = ("smoke", "quick", "full")
DEFAULT_PROFILE = "quick"

__all__ = ["PROFILES", "DEFAULT_PROFILE", "Sizes", "experiments", "table", "resolve"]


@dataclass(frozen=True)
class Sizes(Mapping):
    """The resolved sizes of one experiment at one profile; read as a mapping or by attribute."""

    experiment: str
    profile: str
    values: Mapping[str, Any]

    def __getitem__(self, key):
        return self.values[key]

    def __iter__(self):
        return iter(self.values)

    def __len__(self):
        return len(self.values)

    def __getattr__(self, key):
        values = object.__getattribute__(self, "values")
        if key in values:
            return values[key]
        raise AttributeError(f"experiment {self.experiment!r} has no size {key!r}; it has {sorted(values)}")

    def as_dict(self) -> dict:
        return dict(self.values)


def _flatten(prefix: str, node: dict, out: dict, source: Path) -> None:
    if set(PROFILES) & set(node):
        missing = [p for p in PROFILES if p not in node]
        if missing:
            raise ValueError(f"{source.name}: experiment {prefix!r} lacks profile(s) {missing}")
        keys = [set(node[p]) for p in PROFILES]
        if not keys[0] == keys[1] == keys[2]:
            raise ValueError(f"{source.name}: experiment {prefix!r} declares different keys per profile: "
                             f"{ {p: sorted(k) for p, k in zip(PROFILES, keys)} }")
        out[prefix] = {p: MappingProxyType(dict(node[p])) for p in PROFILES}
        return
    for key, child in node.items():
        if isinstance(child, dict):
            _flatten(f"{prefix}.{key}" if prefix else key, child, out, source)


@lru_cache(maxsize=1)
def _tables() -> dict:
    out: dict = {}
    for path in sorted(Path(__file__).parent.glob("*.toml")):
        with open(path, "rb") as fh:
            _flatten("", tomllib.load(fh), out, path)
    return out


def experiments() -> list[str]:
    """Names of every experiment that declares profiles."""
    return sorted(_tables())


def table(experiment: str) -> dict:
    """``{profile: {size: value}}`` for one experiment."""
    tables = _tables()
    if experiment not in tables:
        raise KeyError(f"unknown experiment {experiment!r}; known experiments: {', '.join(sorted(tables))}")
    return {p: dict(v) for p, v in tables[experiment].items()}


def resolve(experiment: str, profile: str = DEFAULT_PROFILE, **overrides) -> Sizes:
    """Sizes of ``experiment`` at ``profile``, with every override that is not ``None`` applied.

    Raises a ``ValueError`` naming the problem for an unknown profile or an unknown size.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    values = dict(table(experiment)[profile])
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for experiment {experiment!r}; "
                         f"its sizes are {sorted(values)}")
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
    return Sizes(experiment, profile, MappingProxyType(values))
