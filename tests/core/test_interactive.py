import numpy as np
import pytest

from replab.plotting import interactive


def test_heatmap_embeds_values_and_hover_text(monkeypatch):
    monkeypatch.setenv("REPLAB_BOOK", "1")
    fig = interactive.heatmap(np.array([[1.0, 0.25], [0.5, 0.75]]), ["encoder.1", "mean"], ["encoder.1", "mean"],
                              title="t", setting="β=4 vs β=1")
    html = fig._repr_html_()
    assert "0.25" in html and "encoder.1" in html and "=4 vs " in html  # non-ASCII is JSON-escaped
    assert "cdn.plot.ly" not in html  # in the book, plotly.js comes from the static files once
    monkeypatch.setenv("REPLAB_BOOK", "0")
    assert "cdn.plot.ly" in fig.to_html()


def test_heatmap_shape_must_match_labels():
    with pytest.raises(ValueError, match=r"expected shape \(2, 3\)"):
        interactive.heatmap(np.zeros((2, 2)), ["a", "b"], ["a", "b", "c"])


def test_sweep_with_bands():
    fig = interactive.sweep([0.1, 1, 10], {"β-VAE": [3, 2, 1]}, bands={"β-VAE": ([2, 1, 0], [4, 3, 2])},
                            log_x=True, x_label="β", y_label="relative entropy")
    assert len(fig.figure.data) == 2 and fig.figure.layout.xaxis.type == "log"
