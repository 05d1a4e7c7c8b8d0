"""Every figure of ``replab.plotting`` is made here, so that a page run on offline stand-ins says so on each one."""
from __future__ import annotations

from ..data import stand_ins


def mark_stand_ins(fig) -> None:
    """Write the stand-ins this page's run used (if any) under ``fig``, in small grey type."""
    note = stand_ins.note()
    if note is not None and not getattr(fig, "_replab_stand_in_note", False):
        fig.text(0.5, 0.0, note, ha="center", va="top", fontsize=7, color="0.35")
        fig._replab_stand_in_note = True


def subplots(*args, **kwargs):
    """``matplotlib.pyplot.subplots``, the figure marked by :func:`mark_stand_ins`."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(*args, **kwargs)
    mark_stand_ins(fig)
    return fig, axes
