"""Profiles: the sizes of every experiment, declared once as a typed dataclass, valued per profile in TOML.

Each page section has one *experiment*: a frozen dataclass declared beside the code that runs it, one field per
size, each with its type and one line of meaning (:func:`size`)::

    @profiles.experiment("peste2017.likelihood", pages=("peste2017/02-likelihood-vs-alpha",))
    @dataclass(frozen=True)
    class Likelihood:
        n_test: int = profiles.size("test digits whose likelihood is estimated", unit="images")

The table files beside this module (``<paper>.toml``) hold only values, one table per experiment and profile::

    [peste2017.likelihood.quick]
    n_test = 200

The profiles themselves (their names, order, meaning and the default) are read from ``profiles.toml``; a profile
with a ``base`` takes every value it does not set from its base, so adding a profile touches no code. Every check
(an unknown profile, experiment or key, a missing key, a value of the wrong type) raises a ``ValueError`` from
this module, naming the file, table and key.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import tomllib
import types
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

__all__ = ["size", "experiment", "names", "default_profile", "check_profile", "experiments", "table", "resolve",
           "fields", "describe", "page_experiments", "resolve_page", "parameters_block", "check_all", "Field",
           "allows_stand_ins", "STAND_INS_LINE", "differences"]

_HERE = Path(__file__).parent
_REGISTRY: dict[str, type] = {}          # experiment name -> dataclass
_PAGES: dict[str, list[type]] = {}       # page id -> the experiments it resolves, in declaration order


# ---------------------------------------------------------------------------------------------- the profiles


@lru_cache(maxsize=1)
def _profiles() -> dict[str, dict]:
    path = _HERE / "profiles.toml"
    with open(path, "rb") as fh:
        spec = tomllib.load(fh)
    for name, entry in spec.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("meaning"), str):
            raise ValueError(f"{path.name}: profile {name!r} needs a table with a 'meaning' string")
        base = entry.get("base")
        if base is not None and (base not in spec or base == name):
            raise ValueError(f"{path.name}: profile {name!r} has base {base!r}, which is not another profile")

    def inherited(name: str, key: str, seen=()):
        if name in seen:
            raise ValueError(f"{path.name}: profiles {' -> '.join(seen + (name,))} are each other's base")
        entry = spec[name]
        if key in entry or entry.get("base") is None:
            return entry.get(key)
        return inherited(entry["base"], key, seen + (name,))

    out: dict[str, dict] = {}
    for name, entry in spec.items():   # the file's order: smallest first
        stand_ins = inherited(name, "stand_ins")
        if not isinstance(stand_ins, bool):
            raise ValueError(f"{path.name}: profile {name!r} needs stand_ins = true or false (or a base that has it)")
        out[name] = {"meaning": entry["meaning"], "base": entry.get("base"),
                     "default": bool(entry.get("default", False)), "stand_ins": stand_ins}
    defaults = [n for n, e in out.items() if e["default"]]
    if len(defaults) != 1:
        raise ValueError(f"{path.name}: exactly one profile must have default = true, got {defaults}")
    return out


def names() -> tuple[str, ...]:
    """The profiles, smallest first, as ``profiles.toml`` declares them."""
    return tuple(_profiles())


def default_profile() -> str:
    """The profile a page runs at unless told otherwise (the book's)."""
    return next(n for n, e in _profiles().items() if e["default"])


def meaning(profile: str) -> str:
    return _profiles()[check_profile(profile)]["meaning"]


def allows_stand_ins(profile: str) -> bool:
    """Whether pages at ``profile`` may run on offline stand-ins for missing paper datasets unless told otherwise
    (``stand_ins`` in ``profiles.toml``)."""
    return _profiles()[check_profile(profile)]["stand_ins"]


def check_profile(profile: Any) -> str:
    """``profile`` if it is one of :func:`names`, else a ``ValueError`` listing them: the one place a profile
    name is checked."""
    if not isinstance(profile, str) or profile not in _profiles():
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(names())}")
    return profile


# ---------------------------------------------------------------------------------------------- declaring


@dataclasses.dataclass(frozen=True)
class Field:
    """One size of an experiment, as :func:`describe` and ``replab list`` show it."""

    name: str
    type: str          # e.g. "int", "list of float", "int or None"
    meaning: str
    unit: str | None
    values: dict       # profile -> value


DATASET_KINDS = ("one", "each", "pair")


def size(meaning: str, unit: str | None = None, dataset: str | None = None):
    """A field of an experiment dataclass: ``meaning`` is one line saying what the size is, ``unit`` what it
    counts (``"steps"``, ``"images"``, ``"nats"``) when that is not plain from the meaning.

    ``dataset`` marks a field naming datasets, which :func:`resolve_page` checks against the stand-in policy
    (:mod:`replab.data.stand_ins`), the field's value at ``full`` being the paper's: ``"one"`` (a name), ``"each"``
    (a list whose missing members without a stand-in may be left out) or ``"pair"`` (a list used whole: it is
    emptied when a member is missing and has no stand-in)."""
    if not meaning or not isinstance(meaning, str):
        raise TypeError("size() needs the field's meaning as a non-empty string")
    if dataset is not None and dataset not in DATASET_KINDS:
        raise ValueError(f"size(dataset=...): expected one of {DATASET_KINDS}, got {dataset!r}")
    return dataclasses.field(metadata={"meaning": meaning, "unit": unit, "dataset": dataset})


def experiment(name: str, pages: tuple[str, ...] | list[str] = ()):
    """Class decorator registering a frozen dataclass as experiment ``name`` (its tables in the TOML files are
    ``[<name>.<profile>]``) and as a source of parameters of each page id in ``pages``."""

    def register(cls: type) -> type:
        if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:
            raise TypeError(f"experiment {name!r}: {cls.__name__} must be a frozen dataclass")
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if "meaning" not in f.metadata:
                raise TypeError(f"experiment {name!r}: field {f.name!r} of {cls.__name__} needs "
                                f"profiles.size(meaning)")
            _type_name(hints[f.name], f"{cls.__name__}.{f.name}")  # an unsupported type fails here, not later
        old = _REGISTRY.get(name)
        if old is not None and old.__qualname__ != cls.__qualname__:
            raise ValueError(f"experiment {name!r} is declared twice: {old.__qualname__} and {cls.__qualname__}")
        cls.experiment_name = name
        _REGISTRY[name] = cls
        for page in pages:
            listed = _PAGES.setdefault(page, [])
            listed[:] = [c for c in listed if c.__qualname__ != cls.__qualname__] + [cls]
        return cls

    return register


@lru_cache(maxsize=1)
def _import_experiments() -> None:
    """Import every module of :mod:`replab.experiments`, so that every experiment is registered."""
    from .. import experiments as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")


def _class(exp: str | type) -> type:
    if isinstance(exp, type):
        if getattr(exp, "experiment_name", None) not in _REGISTRY:
            raise ValueError(f"{exp.__name__} is not a registered experiment (decorate it with "
                             f"profiles.experiment)")
        return exp
    if exp not in _REGISTRY:
        _import_experiments()
    if exp not in _REGISTRY:
        raise ValueError(f"unknown experiment {exp!r}; known experiments: {', '.join(experiments())}")
    return _REGISTRY[exp]


# ---------------------------------------------------------------------------------------------- types


def _type_name(tp, where: str) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in (int, float, str, bool):
        return tp.__name__
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return f"list of {_type_name(args[0], where)}"
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and len(args) == 2:
            return f"{_type_name(inner[0], where)} or None"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    raise TypeError(f"{where}: unsupported size type {tp!r} (use int, float, str, bool, Literal[...], "
                    f"tuple[T, ...] or T | None)")


def _coerce(value: Any, tp, where: str) -> Any:
    """``value`` as type ``tp`` (a list becomes a tuple, an int a float), or a ``ValueError`` naming ``where``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    ok = True
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    elif origin is tuple:
        if isinstance(value, (list, tuple)):
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        ok = False
    elif origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), where)
    elif origin is Literal:
        ok = value in args and not isinstance(value, bool)
    if not ok:
        raise ValueError(f"{where} must be {_with_article(_type_name(tp, where))}, got {value!r} "
                         f"({type(value).__name__})")
    return value


def _with_article(name: str) -> str:
    if name.startswith(("list", "one of")):
        return name if name.startswith("one of") else "a " + name
    return ("an " if name[0] in "aeiou" else "a ") + name


# ---------------------------------------------------------------------------------------------- the tables


def _collect(prefix: str, node: dict, out: dict, source: Path) -> None:
    profile_names = set(_profiles())
    if profile_names & set(node):
        for key, child in node.items():
            if key not in profile_names:
                raise ValueError(f"{source.name}: [{prefix}] has table {key!r}, which is not a profile "
                                 f"({', '.join(names())})")
            if not isinstance(child, dict):
                raise ValueError(f"{source.name}: [{prefix}.{key}] must be a table")
        if prefix in out:
            raise ValueError(f"{source.name}: experiment {prefix!r} is also declared in {out[prefix][1].name}")
        out[prefix] = ({p: dict(v) for p, v in node.items()}, source)
        return
    for key, child in node.items():
        if isinstance(child, dict):
            _collect(f"{prefix}.{key}" if prefix else key, child, out, source)


@lru_cache(maxsize=1)
def _tables() -> dict[str, tuple[dict, Path]]:
    out: dict = {}
    for path in sorted(_HERE.glob("*.toml")):
        if path.name == "profiles.toml":
            continue
        with open(path, "rb") as fh:
            try:
                data = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{path.name}: not valid TOML: {exc}") from None
        _collect("", data, out, path)
    return out


def experiments() -> list[str]:
    """Names of every experiment that has values in the TOML files."""
    return sorted(_tables())


def _raw(name: str) -> tuple[dict, Path]:
    tables = _tables()
    if name not in tables:
        raise ValueError(f"experiment {name!r} has no values in any profiles/*.toml file; experiments with "
                         f"values: {', '.join(sorted(tables))}")
    return tables[name]


def table(exp: str | type) -> dict[str, dict]:
    """``{profile: {size: value}}`` for one experiment, with each profile's base filled in and every value
    checked against the experiment's dataclass."""
    cls = _class(exp)
    name = cls.experiment_name
    raw, source = _raw(name)
    hints = typing.get_type_hints(cls)
    declared = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, dict] = {}
    for profile in _base_first():
        entry = _profiles()[profile]
        given = raw.get(profile)
        if given is None and entry["base"] is None:
            raise ValueError(f"{source.name}: experiment {name!r} has no [{name}.{profile}] table (profile "
                             f"{profile!r} has no base to take values from)")
        values = dict(out[entry["base"]]) if entry["base"] is not None else {}
        for key, value in (given or {}).items():
            if key not in declared:
                raise ValueError(f"{source.name}: [{name}.{profile}] has unknown key {key!r}; "
                                 f"{cls.__module__}.{cls.__name__} declares {', '.join(sorted(declared))}")
            values[key] = _coerce(value, hints[key], f"{source.name}: [{name}.{profile}] {key}")
        missing = sorted(declared - set(values))
        if missing:
            raise ValueError(f"{source.name}: [{name}.{profile}] lacks key(s) {missing}")
        out[profile] = values
    return {profile: out[profile] for profile in _profiles()}


def _base_first() -> list[str]:
    """The profiles ordered so that each comes after its base."""
    order: list[str] = []

    def visit(name: str) -> None:
        base = _profiles()[name]["base"]
        if base is not None and base not in order:
            visit(base)
        if name not in order:
            order.append(name)

    for name in _profiles():
        visit(name)
    return order


def resolve(exp: str | type, profile: str | None = None, **overrides) -> Any:
    """The experiment's dataclass at ``profile``, with every override that is not ``None`` applied (checked
    and converted like the table's values: a list becomes a tuple)."""
    profile = check_profile(default_profile() if profile is None else profile)
    cls = _class(exp)
    values = table(cls)[profile]
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for experiment {cls.experiment_name!r}; its sizes are "
                         f"{', '.join(sorted(values))}")
    for key, value in overrides.items():
        if value is not None:
            values[key] = _coerce(value, hints[key], f"parameter {key!r} of {cls.experiment_name}")
    return cls(**values)


def fields(exp: str | type) -> list[Field]:
    """Every size of an experiment with its type, meaning, unit and value per profile."""
    cls = _class(exp)
    hints = typing.get_type_hints(cls)
    values = table(cls)
    return [Field(f.name, _type_name(hints[f.name], f.name), f.metadata["meaning"], f.metadata["unit"],
                  {p: values[p][f.name] for p in names()}) for f in dataclasses.fields(cls)]


def describe(exp: str | type) -> str:
    """A plain-text table of :func:`fields`, as ``replab list`` prints it."""
    lines = []
    for f in fields(exp):
        unit = f" [{f.unit}]" if f.unit else ""
        per = ", ".join(f"{p}={v!r}" for p, v in f.values.items())
        lines.append(f"{f.name} ({f.type}){unit}: {f.meaning}\n        {per}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- pages


def page_experiments(page: str) -> tuple[type, ...]:
    """The experiments whose sizes are parameters of ``page`` (a page id such as ``peste2017/01-...``)."""
    _import_experiments()
    return tuple(_PAGES.get(page, ()))


def _page_fields(page: str) -> dict[str, list[type]]:
    """Parameter name -> the page's experiments that have a size of that name (one parameter sets them all)."""
    out: dict[str, list[type]] = {}
    for cls in page_experiments(page):
        for f in dataclasses.fields(cls):
            out.setdefault(f.name, []).append(cls)
    return out


def resolve_page(page: str, profile: str, namespace: dict) -> tuple:
    """Every experiment of ``page`` at ``profile``, each size taken from ``namespace`` (the page's parameters,
    ``None`` meaning the profile's value): the page passes its parameters without naming them again.

    It also sets the page's stand-in policy from ``namespace["stand_ins"]`` (``None``: the profile's rule, see
    :func:`allows_stand_ins`) and checks every dataset field against it (a page without dataset fields reads no
    paper's data, and its policy is ``None``): a paper dataset whose files are missing
    is refused or replaced by its stand-in (:func:`replab.data.stand_ins.choose`), so the returned sizes name the
    data the page will really read (and the artifact cache keys it)."""
    from ..data import stand_ins

    classes = page_experiments(page)
    if not classes:
        raise ValueError(f"page {page!r} declares no experiment; known pages: {', '.join(sorted(_PAGES))}")
    profile = check_profile(profile)
    allow = namespace.get("stand_ins")
    if allow is not None and not isinstance(allow, bool):
        raise ValueError(f"stand_ins: expected True, False or None, got {allow!r}")
    reads_data = any(f.metadata.get("dataset") for cls in classes for f in dataclasses.fields(cls))
    # a page that names no paper dataset (the tour of the offline sets, synthetic checks) has no stand-ins to
    # refuse or report
    stand_ins.configure((allows_stand_ins(profile) if allow is None else allow) if reads_data else None)
    out = []
    for cls in classes:
        given = {f.name: namespace.get(f.name) for f in dataclasses.fields(cls)}
        out.append(_checked_datasets(resolve(cls, profile, **given), profile))
    return tuple(out)


def _checked_datasets(cfg: Any, profile: str) -> Any:
    """``cfg`` with each dataset field passed through the stand-in policy (the paper's dataset: its ``full``
    value)."""
    from ..data import stand_ins

    paper = None
    changes = {}
    for f in dataclasses.fields(cfg):
        kind = f.metadata.get("dataset")
        if kind is None:
            continue
        if paper is None:
            paper = table(type(cfg))["full"]
        value, full = getattr(cfg, f.name), paper[f.name]
        where = f"profile {profile!r}"
        if kind == "one":
            changes[f.name] = stand_ins.choose(value, full, profile=where)
            continue
        full = tuple(full) + (None,) * max(0, len(value) - len(full))
        chosen = tuple(stand_ins.choose(v, p if kind == "pair" else None, profile=where, optional=True)
                       for v, p in zip(value, full))
        if kind == "pair":
            changes[f.name] = () if None in chosen else chosen
        else:
            changes[f.name] = tuple(c for c in chosen if c is not None)
    return dataclasses.replace(cfg, **changes) if changes else cfg


def differences(page: str, profile: str = "medium", reference: str = "full"):
    """The sizes of ``page``'s experiments whose value at ``profile`` differs from ``reference`` (by default: what
    ``medium`` changes from the papers' settings), as a pandas DataFrame with one row per size: experiment,
    parameter, meaning, and the two values. A page shows it beside the sentences saying why."""
    import pandas as pd

    profile, reference = check_profile(profile), check_profile(reference)
    rows = []
    for cls in page_experiments(page):
        values = table(cls)
        for f in dataclasses.fields(cls):
            a, b = values[profile][f.name], values[reference][f.name]
            if a != b:
                unit = f" [{f.metadata['unit']}]" if f.metadata["unit"] else ""
                rows.append({"experiment": cls.experiment_name, "parameter": f.name,
                             "meaning": f.metadata["meaning"] + unit, profile: _shown(a), reference: _shown(b)})
    return pd.DataFrame(rows, columns=["experiment", "parameter", "meaning", profile, reference])


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(_shown(v) for v in value) if value else "(none)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10000:
        return f"{value:,}"
    return str(value)


PARAMETERS_MARK = "# Sizes (None: the profile's value)."
STAND_INS_LINE = ("stand_ins: bool | None = None  # offline stand-ins for missing paper data (None: yes at smoke and "
                  "quick, no at medium and full)")


def parameters_block(page: str) -> str:
    """The generated part of ``page``'s parameters cell: one ``name = None  # meaning`` line per size of its
    experiments. ``make sync`` writes it; a test checks every page has it."""
    fields_of = _page_fields(page)
    if not fields_of:
        return ""
    width = max(len(n) for n in fields_of) + len(" = None")
    lines = [STAND_INS_LINE, PARAMETERS_MARK + " Written by `make sync`; `replab list` shows types and values."]
    for name, classes in fields_of.items():
        f = next(f for f in dataclasses.fields(classes[0]) if f.name == name)
        unit = f" [{f.metadata['unit']}]" if f.metadata["unit"] else ""
        lines.append(f"{name + ' = None':<{width}}  # {f.metadata['meaning']}{unit}")
    return "\n".join(lines)


def check_value(page: str, name: str, value: Any) -> None:
    """Raise a ``ValueError`` when ``value`` cannot be size ``name`` of every experiment of ``page`` having it.
    Returns quietly for a name that is no size of the page (the caller checks those)."""
    for cls in _page_fields(page).get(name, []):
        if value is not None:
            _coerce(value, typing.get_type_hints(cls)[name], f"parameter {name!r} of {page}")


def check_all() -> list[str]:
    """Check every experiment's tables at every profile and every experiment's registration; returns the names
    checked. Raises the first ``ValueError`` found."""
    _import_experiments()
    missing = sorted(set(_tables()) - set(_REGISTRY))
    if missing:
        raise ValueError(f"experiment(s) {missing} have values in profiles/*.toml but no dataclass declares them")
    unvalued = sorted(set(_REGISTRY) - set(_tables()))
    if unvalued:
        raise ValueError(f"experiment(s) {unvalued} are declared but have no values in profiles/*.toml")
    for name in sorted(_REGISTRY):
        table(name)
    return sorted(_REGISTRY)

