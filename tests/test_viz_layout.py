"""Reading layout of the book's figures: legends under the plot, every slider step labelled."""
import numpy as np
import plotly.graph_objects as go

from noisyloss import viz


def _slider():
    return viz.slider_figure([0.1, 0.5, 2], lambda v: [go.Scatter(x=[0, 1], y=[0, v], name=f"v={v}")],
                             param_name="v", title="t")


def test_slider_steps_are_labelled_with_their_values():
    steps = _slider().layout.sliders[0].steps
    assert [s.label for s in steps] == ["0.1", "0.5", "2"]


def test_legends_sit_below_the_plot_and_the_slider():
    fig = _slider()
    legend = fig.layout.legend
    assert (legend.orientation, legend.yref, legend.y, legend.yanchor) == ("h", "container", 0.0, "bottom")
    # the bottom margin holds the axis title, the slider and the legend: the plot area keeps its height
    assert fig.layout.margin.b >= 150 and fig.layout.height - fig.layout.margin.b - fig.layout.margin.t >= 300


def test_every_figure_helper_puts_its_legend_below():
    figs = [viz.history_figure({"ce": [{"epoch": 1, "test_acc": 0.5, "memorised": 0.1}]}),
            viz.bar_figure({"a": [1.0, 2.0]}, ["x", "y"]),
            viz.reliability_figure({"ce": {"edges": np.linspace(0, 1, 3), "accuracy": [0.2, 0.9]}}),
            viz.loss_curves_figure("gce:q={}", [0.5, 1.0], param_name="q", points=10)]
    for fig in figs:
        assert fig.layout.legend.yref == "container" and fig.layout.legend.yanchor == "bottom"
