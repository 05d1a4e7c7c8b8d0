"""Stand-ins: the offline datasets that take a paper dataset's place, and the policy that says when they may.

A page names its datasets in its experiment's profile tables; the value at ``full`` is the paper's dataset. A
*stand-in* is any dataset used in its place: a generated set (``symsol_solids`` for Symsol, ``affmnist`` for
affNIST, the dSprites generator for dSprites' file), a subset (``mnist10k`` for MNIST), or another dataset named by
a small profile (MNIST-10k where Jamroż et al. use CIFAR-10). Stand-ins make the book run offline at ``smoke`` and
``quick``; at ``medium`` and ``full`` a page runs on the paper's files or stops, unless its reader sets
``stand_ins=True``, and then every claim and figure of the page says which stand-in it used.

The policy is set once per page run by :func:`replab.profiles.resolve_page` (:func:`configure`). Outside a page
(library calls, tests) it is ``None``: nothing is substituted or refused, and a missing file raises the loader's
``FileNotFoundError`` as before.
"""
from __future__ import annotations

import warnings

__all__ = ["STAND_IN", "PAPER_OF", "MissingDataset", "StandInRefused", "configure", "allowed", "choose", "refuse_in_load",
           "used", "note", "record"]

# paper dataset -> the offline dataset that may take its place when its files are missing (with stand_ins=True)
STAND_IN = {"mnist": "mnist10k", "symsol": "symsol_solids", "affnist": "affmnist", "dsprites": "dsprites"}
# offline dataset -> the paper dataset it stands in for (dsprites is itself when its file is there)
PAPER_OF = {"mnist10k": "mnist", "digits": "mnist", "symsol_like": "symsol", "symsol_solids": "symsol",
            "affmnist": "affnist"}
_GENERATED_DSPRITES = "dsprites (generated)"

_allowed: bool | None = None
_used: dict[str, str] = {}       # stand-in -> what it stands in for, in the order met


class MissingDataset(FileNotFoundError):
    """A paper dataset whose files are not in the data folder, at a profile that runs only on real files."""


class StandInRefused(ValueError):
    """A stand-in asked for at a profile that runs only on the papers' datasets."""


def configure(allow: bool | None) -> None:
    """Set the policy of the page about to run (``None``: no page, nothing checked) and forget what the previous
    page used."""
    global _allowed
    if allow is not None and not isinstance(allow, bool):
        raise ValueError(f"stand_ins: expected True, False or None, got {allow!r}")
    _allowed = allow
    _used.clear()


def allowed() -> bool | None:
    return _allowed


def record(stand_in: str, paper: str) -> None:
    """Note that ``stand_in`` took ``paper``'s place in this page's run (shown on its claims and figures)."""
    if _allowed and stand_in != paper:
        _used.setdefault(stand_in, paper)


def used() -> dict[str, str]:
    """The stand-ins this page's run has used: stand-in -> the paper dataset it replaced."""
    return dict(_used)


def note() -> str | None:
    """One line naming the stand-ins used (``None`` when there were none), as figures and claims show it."""
    if not _used:
        return None
    return "stand-in data: " + "; ".join(f"{s} for {p}" for s, p in _used.items())


def _fetch_hint(name: str) -> str:
    from .fetch import sources

    src = sources().get(name)
    if src is not None and src.manual:
        return f"`replab data fetch {name}` says where to put its files, which its hosts give only by hand"
    return f"run `replab data fetch {name}`"


def _present(name: str, root=None) -> bool:
    from .fetch import present, sources

    return name in sources() and present(name, root)


def choose(name: str, paper: str | None = None, *, profile: str = "this profile", root=None,
           optional: bool = False) -> str | None:
    """The dataset to load for a page that asks for ``name`` where the paper uses ``paper`` (default: ``name``).

    - ``name`` is a stand-in (an offline set of ``PAPER_OF``, or the dSprites generator): refused with :class:`StandInRefused`
      unless stand-ins are allowed, and then recorded.
    - ``name`` is a real dataset whose files are missing: with stand-ins allowed, its stand-in (recorded, with a
      warning); without one, ``None`` when ``optional`` (the page leaves it out, with a warning) or
      :class:`MissingDataset`; stand-ins refused: :class:`MissingDataset` naming the ``replab data fetch``
      command.
    """
    paper = name if paper is None else paper
    if _allowed is None:
        return name
    generated = name == "dsprites" and not _present("dsprites", root)
    if name in PAPER_OF or generated:
        stands_for = paper if paper != name else PAPER_OF.get(name, name)
        if not _allowed:
            what = "the dSprites generator" if generated else name
            raise StandInRefused(
                f"{what} is an offline stand-in for {stands_for}, and {profile} runs only on the papers' datasets: "
                f"{_fetch_hint(stands_for)} (data folder: REPLAB_DATA), or set stand_ins=True to run on the "
                f"stand-in (every claim and figure then says so)")
        record(_GENERATED_DSPRITES if generated else name, stands_for)
        return name
    if _present(name, root):
        return name
    stand_in = STAND_IN.get(name)
    if not _allowed:
        extra = f", or set stand_ins=True to run on the stand-in {stand_in}" if stand_in else ""
        raise MissingDataset(f"{name}: its files are not in the data folder (REPLAB_DATA), and {profile} runs only "
                             f"on the papers' datasets: {_fetch_hint(name)}{extra}")
    if stand_in is None:
        if optional:
            warnings.warn(f"{name}: its files are not in the data folder and it has no stand-in: left out",
                          stacklevel=2)
            record(f"no {name}", name)
            return None
        raise MissingDataset(f"{name}: its files are not in the data folder (REPLAB_DATA) and no offline stand-in "
                             f"exists: {_fetch_hint(name)}, or run a profile that does not use it (quick)")
    warnings.warn(f"{name}: its files are not in the data folder; using the stand-in {stand_in} (stand_ins=True)",
                  stacklevel=2)
    record(_GENERATED_DSPRITES if stand_in == "dsprites" else stand_in, name)
    return stand_in


def refuse_in_load(name: str, root=None) -> None:
    """The check :func:`replab.data.load` makes: under a policy that refuses stand-ins, loading one (or the dSprites
    generator, when the file is missing) raises :class:`StandInRefused`; under one that allows them, the load is
    recorded. Real datasets are left to their loaders."""
    if _allowed is not None and (name in PAPER_OF or name == "dsprites"):
        choose(name, profile="this page's profile", root=root)
