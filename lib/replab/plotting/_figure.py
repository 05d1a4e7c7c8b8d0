"""Every figure of ``replab.plotting`` is made here, so that a page run on offline stand-ins says so on each one."""
from __future__ import annotations

from ..data import stand_ins


def mark_stand_ins(fig) -> None:
    """Write the stand-ins this page's run used (if any) under ``fig``'s axes, in small grey type."""
    note = stand_ins.note()
    if note is None or getattr(fig, "_replab_stand_in_note", False):
        return
    from matplotlib.text import Annotation
    from matplotlib.transforms import Bbox

    def below_the_axes(renderer):
        # placed when drawn, under every axes with its labels (and colorbars added after this call)
        boxes = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]
        boxes = [b for b in boxes if b is not None and b.width > 0 and b.height > 0]
        return Bbox.union(boxes) if boxes else fig.bbox

    fig.add_artist(Annotation(note, xy=(0.5, 0.0), xycoords=below_the_axes, xytext=(0, -4),
                              textcoords="offset points", ha="center", va="top", fontsize=7, color="0.35"))
    fig._replab_stand_in_note = True


def subplots(*args, **kwargs):
    """``matplotlib.pyplot.subplots``, the figure marked by :func:`mark_stand_ins`."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(*args, **kwargs)
    mark_stand_ins(fig)
    return fig, axes
