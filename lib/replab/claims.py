"""Claims: which statements of the papers a page tests, the verdict, and the numbers behind it.

A page makes one :class:`Recorder`, adds each claim it tests with the measured values, and displays the table.
Records are written as JSON (one file per page) to ``REPLAB_CLAIMS`` (default ``_build/claims`` at the repository
root); ``replab scorecard`` gathers them into ``book/scorecard.md``. A claim that does not reproduce is recorded
as such, with its numbers: verdicts are measured, never tuned.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .cache import atomic_write_bytes, repo_root
from . import evidence, profiles
from .data import stand_ins as _stand_ins

VERDICTS = ("reproduced", "not reproduced", "inconclusive")
PAPERS = {
    "jamroz2020": "Jamroż et al. 2020",
    "nash2019": "Nash et al. 2019",
    "bonheme2022": "Bonheme & Grześ 2022",
    "bonheme2023": "Bonheme & Grześ 2023",
    "peste2017": "Peşte et al. 2017",
    "replab": "replab",
}

__all__ = ["Claim", "Recorder", "VERDICTS", "PAPERS", "claims_dir", "load_all", "verdict", "scorecard_markdown",
           "effect_cell", "n_cell", "recorded_profiles", "stand_in_cell"]


def claims_dir() -> Path:
    """``REPLAB_CLAIMS`` if set, else ``_build/claims`` at the repository root (or ``./_build/claims``)."""
    env = os.environ.get("REPLAB_CLAIMS")
    if env:
        return Path(env).expanduser()
    return (repo_root() or Path.cwd()) / "_build" / "claims"


def verdict(holds: bool | None) -> str:
    """Map a measured test to a verdict: True → reproduced, False → not reproduced, None → inconclusive."""
    if holds is None:
        return "inconclusive"
    return "reproduced" if bool(holds) else "not reproduced"


def _plain(value: Any) -> Any:
    """Measured values as JSON-friendly plain numbers (tensors and NumPy scalars included)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value


@dataclass
class Claim:
    """One claim of a paper as tested by one page at one profile."""

    page: str            # e.g. "bonheme2023/01-metric-sanity"
    paper: str           # key of PAPERS
    claim_id: str        # e.g. "fig1-procrustes-overestimates"
    claim: str           # the claim in words
    verdict: str         # one of VERDICTS
    measured: dict = field(default_factory=dict)
    profile: str = "quick"
    date: str = ""
    hardware: str = ""
    effect: dict | None = None   # an evidence.Effect as a dict: the effect, its interval, n and the rule's inputs
    source: str = ""             # where the paper makes the claim ("Fig. 3", "Table 1", "Sec. 2.2")
    stand_ins: dict = field(default_factory=dict)   # offline stand-in -> the paper dataset it replaced in this run

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.paper not in PAPERS:
            raise ValueError(f"unknown paper {self.paper!r}; known: {sorted(PAPERS)}")
        profiles.check_profile(self.profile)
        self.measured = _plain(dict(self.measured))
        if self.effect is not None:
            try:
                self.effect = evidence.Effect(**self.effect).as_dict()
            except (TypeError, ValueError) as exc:
                raise ValueError(f"claim {self.claim_id!r}: effect is not an evidence.Effect ({exc})") from None

    def interval(self) -> "evidence.Effect | None":
        """The claim's effect as an :class:`replab.evidence.Effect`, or ``None`` for a claim recorded without."""
        return None if self.effect is None else evidence.Effect(**self.effect)


def hardware() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)}"
    except Exception:  # pragma: no cover - torch always importable in replab
        pass
    return f"CPU ({os.cpu_count()} cores, {platform.machine()})"


class Recorder:
    """Collects the claims one page tests and writes them after every addition.

    Parameters
    ----------
    page : str
        The page's path below ``notebooks/`` without suffix, e.g. ``"peste2017/01-active-components"``.
    profile : str
        The profile the page ran at.
    """

    def __init__(self, page: str, profile: str, directory: str | Path | None = None):
        self.page = page
        self.profile = profile
        self.directory = Path(directory) if directory is not None else claims_dir()
        self.claims: list[Claim] = []

    @property
    def path(self) -> Path:
        return self.directory / (self.page.replace("/", "__") + ".json")

    def add(self, paper: str, claim_id: str, claim: str, holds: bool | None, **measured) -> Claim:
        """Record a claim; ``holds`` is the measured test (``None`` when the run cannot decide)."""
        c = Claim(page=self.page, paper=paper, claim_id=claim_id, claim=claim, verdict=verdict(holds),
                  measured=measured, profile=self.profile,
                  date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"), hardware=hardware(),
                  stand_ins=_stand_ins.used())
        return self._keep(c)

    def _keep(self, c: Claim) -> Claim:
        self.claims = [x for x in self.claims if x.claim_id != c.claim_id] + [c]
        atomic_write_bytes(self.path, json.dumps([asdict(x) for x in self.claims], indent=1).encode())
        return c

    def add_effect(self, paper: str, claim_id: str, claim: str, effect: "evidence.Effect", source: str,
                   **measured) -> Claim:
        """Record a claim whose verdict is :func:`replab.evidence.rule` of its ``effect``; ``source`` names the
        paper's figure, table or section that states it."""
        if not isinstance(effect, evidence.Effect):
            raise TypeError(f"effect: expected a replab.evidence.Effect, got {type(effect).__name__}")
        if not source:
            raise ValueError(f"claim {claim_id!r}: name the paper's figure, table or section (source=...)")
        c = Claim(page=self.page, paper=paper, claim_id=claim_id, claim=claim, verdict=evidence.rule(effect),
                  measured=measured, profile=self.profile,
                  date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"), hardware=hardware(),
                  effect=effect.as_dict(), source=source, stand_ins=_stand_ins.used())
        return self._keep(c)

    def figure(self):
        """The page's claims with an interval as a forest plot (:func:`replab.plotting.claims.forest`)."""
        from .plotting.claims import forest

        return forest(self.claims)

    def table(self):
        """The recorded claims as a pandas DataFrame (what a page displays as its verdict cell)."""
        import pandas as pd

        rows = [{"claim": c.claim_id, "statement": c.claim, "verdict": c.verdict,
                 "measured": ", ".join(f"{k}={_fmt(v)}" for k, v in c.measured.items()),
                 "stand-in data": stand_in_cell(c)} for c in self.claims]
        columns = ["claim", "statement", "verdict", "measured"]
        if any(c.stand_ins for c in self.claims):
            columns.append("stand-in data")
        return pd.DataFrame(rows, columns=columns)


def stand_in_cell(c: Claim) -> str:
    """The offline stand-ins a claim's run used, as "mnist10k for mnist; ..." (empty for the papers' data)."""
    return "; ".join(f"{s} for {p}" for s, p in c.stand_ins.items())


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and len(v) > 6:
        return "[" + ", ".join(_fmt(x) for x in v[:6]) + ", …]"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def load_all(directory: str | Path | None = None) -> list[Claim]:
    """Every claim recorded under ``directory`` (default :func:`claims_dir`); none when it does not exist.

    Raises a ``ValueError`` naming the file for a record file that is not a JSON list of claim records."""
    directory = Path(directory) if directory is not None else claims_dir()
    out: list[Claim] = []
    for path in sorted(directory.glob("*.json")):
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"claims file {path} is not valid JSON ({exc})") from None
        if not isinstance(records, list):
            raise ValueError(f"claims file {path} must hold a list of claim records, "
                             f"got {type(records).__name__}")
        for i, rec in enumerate(records):
            try:
                out.append(Claim(**rec))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"claims file {path}: item {i} is not a claim record ({exc})") from None
    return out


def _num(v: float) -> str:
    return f"{v:.3g}"


def effect_cell(c: Claim) -> str:
    """``estimate [low, high] vs null`` for a claim with an interval; what the claim lacks otherwise."""
    e = c.interval()
    if e is None:
        return "no interval (recorded before intervals)"
    if e.low is None:
        return f"{_num(e.estimate)}; no interval: {e.why}"
    need = "" if e.smallest is None else f", needs {'≥' if e.side == 'greater' else '≤'} {_num(e.smallest)}"
    return f"{_num(e.estimate)} [{_num(e.low)}, {_num(e.high)}] vs {_num(e.null)}{need}"


def n_cell(c: Claim) -> str:
    e = c.interval()
    if e is None or not e.n:
        return "—"
    return " × ".join(f"{v:,} {k}" for k, v in e.n.items())


def scorecard_markdown(claims: Iterable[Claim], others: dict[str, Iterable[Claim]] | None = None,
                       figure: str | None = None) -> str:
    """The scorecard page: the counts, the forest plot (``figure``, a path relative to the page) and, per paper,
    a compact table: the claim, its verdict at the book's profile and at every profile in ``others`` (recorded
    runs, ``{profile: claims}``), its effect [interval] and n. The measured values stay on each claim's page."""
    claims = list(claims)
    others = {p: {(c.page, c.claim_id): c for c in cs} for p, cs in (others or {}).items()}
    lines = ["# Scorecard", "",
             "Which claims of the papers reproduce, as measured by the last build of this book. Each claim states "
             "its effect as one number with a 95% interval; the rule: " + evidence.RULE + ". Each row links to "
             "the page that tests it, where the measured values are. `quick` is the book's default size "
             "(2 CPU cores); the other columns are runs recorded in `results/` (see {doc}`reproduce`).", ""]
    if not claims:
        lines += ["No claims were recorded: build the book with `make book` to fill this page.", ""]
        return "\n".join(lines)
    by_paper: dict[str, list[Claim]] = {}
    for c in claims:
        by_paper.setdefault(c.paper, []).append(c)
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
    with_interval = sum(c.interval() is not None and c.interval().low is not None for c in claims)
    lines += [f"**{len(claims)} claims**: {counts['reproduced']} reproduced, {counts['not reproduced']} not "
              f"reproduced, {counts['inconclusive']} inconclusive; {with_interval} with an interval.", ""]
    built_stand_ins = _stand_in_summary(claims)
    if built_stand_ins:
        lines += [f"Ran on offline stand-ins for the papers' datasets (so that the book builds offline): "
                  f"{built_stand_ins}.", ""]
    for profile, recorded in others.items():
        runs = sorted({(c.date, c.hardware) for c in recorded.values()})
        where = "; ".join(f"{hw}, {date}" for date, hw in runs)
        standing = _stand_in_summary(recorded.values())
        lines += [f"`{profile}`: {len(recorded)} claims recorded ({where})"
                  + (f"; on offline stand-ins, marked *(stand-in)* below: {standing}" if standing else "") + ".",
                  ""]
    if figure:
        lines += [f"![Every claim with an interval: its effect against the null, coloured by verdict]({figure})",
                  ""]
    built = {c.profile for c in claims}
    head = " | ".join(sorted(built)) if len(built) == 1 else "verdict"
    columns = [head, *others]
    for paper in PAPERS:
        if paper not in by_paper:
            continue
        lines += [f"## {PAPERS[paper]}", "",
                  "| claim | " + " | ".join(columns) + " | effect [95% interval] | n |",
                  "|---|" + "---|" * len(columns) + "---|---|"]
        for c in sorted(by_paper[paper], key=lambda c: (c.page, c.claim_id)):
            verdict = c.verdict if len(built) == 1 else f"{c.verdict} ({c.profile})"
            cells = [verdict] + [_recorded_cell(o.get((c.page, c.claim_id))) for o in others.values()]
            source = f" ({c.source})" if c.source else ""
            statement = c.claim.replace("|", "/")
            lines.append(f"| [`{c.claim_id}`](../notebooks/{c.page}.md){source}: {statement} | "
                         + " | ".join(cells) + f" | {effect_cell(c).replace('|', '/')} | {n_cell(c)} |")
        lines.append("")
    return "\n".join(lines)


def _stand_in_summary(claims: Iterable[Claim]) -> str:
    """"mnist10k for mnist (12 claims); ..." over the claims that ran on stand-ins ("" when none did)."""
    counts: dict[str, int] = {}
    for c in claims:
        for s, p in c.stand_ins.items():
            counts[f"{s} for {p}"] = counts.get(f"{s} for {p}", 0) + 1
    return "; ".join(f"{k} ({v} claim{'s' if v != 1 else ''})" for k, v in counts.items())


def _recorded_cell(c: Claim | None) -> str:
    if c is None:
        return "not run"
    return c.verdict + (" *(stand-in)*" if c.stand_ins else "")


def recorded_profiles(results: str | Path) -> dict[str, list[Claim]]:
    """``{profile: claims}`` for every ``results/<profile>/claims`` folder that holds records, in the order of
    :func:`replab.profiles.names` (a folder named for no profile is refused with a ``ValueError``)."""
    results = Path(results)
    out: dict[str, list[Claim]] = {}
    if not results.is_dir():
        return out
    known = profiles.names()
    for folder in sorted(p for p in results.iterdir() if p.is_dir() and (p / "claims").is_dir()):
        if folder.name not in known:
            raise ValueError(f"{folder}: results are kept per profile (results/<profile>/claims); "
                             f"{folder.name!r} is not one of {', '.join(known)}")
        loaded = load_all(folder / "claims")
        if loaded:
            out[folder.name] = loaded
    return {p: out[p] for p in known if p in out}
