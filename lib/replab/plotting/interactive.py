"""Interactive figures that work in the static HTML book without a kernel (plotly).

In the built book, plotly.js is served once from the book's static files (``REPLAB_BOOK=1`` is set by the build),
so each figure embeds only its data; in a live notebook (Jupyter, Colab) the figure loads plotly.js itself.
Hovering shows the value, the layer pair and the setting.
"""
from __future__ import annotations

import os
import uuid
from typing import Mapping, Sequence

__all__ = ["Interactive", "heatmap", "sweep", "plotly_js_path"]


def plotly_js_path() -> str:
    """Path of the plotly.js bundle shipped inside the plotly package (copied into the book's static files)."""
    import plotly

    return os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js")


class Interactive:
    """A plotly figure that renders as self-contained HTML (what notebooks display)."""

    def __init__(self, figure):
        from ..data import stand_ins

        self.figure = figure
        note = stand_ins.note()
        if note is not None:   # a page run on offline stand-ins says so on every figure
            figure.add_annotation(text=note, xref="paper", yref="paper", x=0.5, y=-0.2, showarrow=False,
                                  font={"size": 10, "color": "#595959"})

    def to_html(self) -> str:
        in_book = os.environ.get("REPLAB_BOOK", "") == "1"
        return self.figure.to_html(full_html=False, include_plotlyjs=False if in_book else "cdn",
                                   div_id=f"replab-{uuid.uuid4().hex[:12]}",
                                   config={"displaylogo": False, "responsive": True})

    def _repr_html_(self) -> str:
        return self.to_html()


def heatmap(values, rows: Sequence[str], cols: Sequence[str], title: str = "", setting: str = "",
            zmin: float = 0.0, zmax: float = 1.0, metric: str = "CKA", row_label: str = "",
            col_label: str = "") -> Interactive:
    """A layer × layer similarity heatmap; hover shows the layer pair, the value and the setting.

    Parameters
    ----------
    values : array of shape (len(rows), len(cols))
    rows, cols : layer names
    setting : a description of the models compared (shown on hover)
    """
    import numpy as np
    import plotly.graph_objects as go

    v = np.asarray(values, dtype=float)
    if v.shape != (len(rows), len(cols)):
        raise ValueError(f"values: expected shape {(len(rows), len(cols))} for the given layer names, got {v.shape}")
    custom = np.full(v.shape, setting, dtype=object)
    fig = go.Figure(go.Heatmap(
        z=v.tolist(), x=list(cols), y=list(rows), zmin=zmin, zmax=zmax, colorscale="Viridis",
        customdata=custom.tolist(),
        colorbar={"title": metric},
        hovertemplate=(f"{row_label or 'row'}: %{{y}}<br>{col_label or 'column'}: %{{x}}<br>{metric}: %{{z:.3f}}"
                       "<br>%{customdata}<extra></extra>")))
    fig.update_layout(title=title, width=560, height=520, margin={"l": 90, "r": 20, "t": 50, "b": 90},
                      yaxis={"autorange": "reversed", "title": row_label}, xaxis={"title": col_label})
    return Interactive(fig)


def sweep(x: Sequence[float], series: Mapping[str, Sequence[float]], title: str = "", x_label: str = "",
          y_label: str = "", log_x: bool = False, bands: Mapping[str, tuple] | None = None) -> Interactive:
    """Lines of a measured quantity against a swept setting (β, α, ...), with optional min/max bands.

    ``bands`` maps a series name to ``(low, high)`` sequences drawn as a shaded band behind the line.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (name, y) in enumerate(series.items()):
        colour = f"hsl({(i * 67) % 360},60%,45%)"
        if bands and name in bands:
            low, high = bands[name]
            fig.add_trace(go.Scatter(x=list(x) + list(x)[::-1], y=list(high) + list(low)[::-1], fill="toself",
                                     fillcolor=colour.replace("hsl", "hsla").replace(")", ",0.2)"),
                                     line={"width": 0}, hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="lines+markers", name=name, line={"color": colour},
                                 hovertemplate=f"{name}<br>{x_label}: %{{x}}<br>{y_label}: %{{y:.4g}}<extra></extra>"))
    fig.update_layout(title=title, width=620, height=400, xaxis={"title": x_label, "type": "log" if log_x else "linear"},
                      yaxis={"title": y_label}, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return Interactive(fig)


def sweep_frame(df, x: str, group: str, mean: str = "mean", low: str | None = "min", high: str | None = "max",
                **kwargs) -> Interactive:
    """:func:`sweep` from a long table: one line per value of ``group``, ``mean`` against ``x``, and the band
    ``[low, high]`` when those columns are given (e.g. min and max over kept Gibbs sweeps)."""
    series, bands = {}, {}
    for name, part in df.sort_values(x).groupby(group, sort=False):
        series[str(name)] = part[mean].tolist()
        if low and high:
            bands[str(name)] = (part[low].tolist(), part[high].tolist())
    xs = sorted(df[x].unique().tolist())
    return sweep(xs, series, bands=bands or None, **kwargs)
