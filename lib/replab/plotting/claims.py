"""The claims at a glance: a forest plot of every effect and its interval against the null, coloured by verdict.

Effects of different claims have different units (nats, ratios, rank correlations), so each row is drawn on its
own scale: the null at 0, the paper's side to the right, and the row's interval, estimate and smallest implied
effect divided by the largest of their distances from the null. A row then reads the same way whatever its unit:
an interval wholly right of the line reproduces, one wholly left of the claim's smallest effect does not. The
numbers themselves are in the table beside the figure.
"""
from __future__ import annotations

from typing import Iterable

from . import style
from ._figure import subplots

__all__ = ["COLOURS", "forest", "forest_rows"]

COLOURS = {"reproduced": "#2a7d3b", "not reproduced": "#b8322a", "inconclusive": "#8a8a8a"}


def forest_rows(claims: Iterable) -> list[dict]:
    """The rows :func:`forest` draws, in order: one per claim with an interval, each scaled to [-1, 1] with the
    paper's side positive (keys ``label``, ``paper``, ``verdict``, ``low``, ``high``, ``estimate``, ``smallest``)."""
    rows = []
    for c in claims:
        e = c.interval() if hasattr(c, "interval") else None
        if e is None or e.low is None:
            continue
        ends = [e.signed(e.low), e.signed(e.high)]
        lo, hi = min(ends), max(ends)
        est = e.signed(e.estimate)
        smallest = e.signed(e.smallest) if e.smallest is not None else 0.0
        scale = max(abs(lo), abs(hi), abs(est), abs(smallest)) or 1.0
        rows.append({"label": c.claim_id, "paper": c.paper, "verdict": c.verdict, "low": lo / scale,
                     "high": hi / scale, "estimate": est / scale,
                     "smallest": smallest / scale if e.smallest is not None else None})
    return rows


def forest(claims: Iterable, ax=None, papers: dict | None = None):
    """Draw the forest plot of ``claims`` (:class:`replab.claims.Claim` records; those without an interval are
    left out), grouped by paper in the order of ``papers`` (``claims.PAPERS``); returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from ..claims import PAPERS

    style()
    papers = PAPERS if papers is None else papers
    rows = forest_rows(claims)
    order = {p: i for i, p in enumerate(papers)}
    rows.sort(key=lambda r: (order.get(r["paper"], len(order)), r["label"]))
    if ax is None:
        _, ax = subplots(figsize=(7.0, 1.2 + 0.24 * max(len(rows), 1)), layout="constrained")
    fig = ax.figure
    if not rows:
        ax.text(0.5, 0.5, "no claim has an interval yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    labels = []
    for y, r in enumerate(rows):
        colour = COLOURS[r["verdict"]]
        ax.plot([r["low"], r["high"]], [y, y], color=colour, lw=2.2, solid_capstyle="butt")
        ax.plot([r["estimate"]], [y], "o", color=colour, ms=4)
        if r["smallest"] is not None and r["smallest"] > 0:
            ax.plot([r["smallest"]], [y], "|", color="black", ms=8, mew=1.2)
        labels.append(f"{papers.get(r['paper'], r['paper'])}: {r['label']}")
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(-1.08, 1.08)
    ax.set_xticks([-1, 0, 1], ["against the paper", "no effect", "the paper's side"], fontsize=7)
    ax.grid(axis="x", alpha=0.3)
    handles = [Line2D([], [], color=c, lw=2.2, label=v) for v, c in COLOURS.items()]
    handles.append(Line2D([], [], color="black", marker="|", ls="", ms=8, label="smallest effect claimed"))
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=7)
    ax.set_title("Each claim's effect and 95% interval, scaled per row (null at 0)", fontsize=9)
    return fig
