"""Reading layout of the book's figures: legends under the plot, every slider step labelled legibly,
a title on every figure clear of plotly's toolbar, no fixed widths, heatmaps and reliability diagrams
that read on a phone."""
import numpy as np
import plotly.graph_objects as go
import pytest

from noisyloss import viz

SEVEN_LOSSES = ["ce", "gce:q=0.7", "sce:alpha=0.1,beta=1", "nce_rce:alpha=1,beta=1", "mae",
                "bootstrap:beta=0.8,hard=true", "focal:gamma=2"]


def _slider(values=(0.1, 0.5, 2)):
    return viz.slider_figure(list(values), lambda v: [go.Scatter(x=[0, 1], y=[0, 1], name=str(v))],
                             param_name="v", title="t")


def _rel(counts, acc):
    n = len(counts)
    edges = np.linspace(0, 1, n + 1)
    return {"edges": edges, "count": np.asarray(counts), "accuracy": np.asarray(acc, dtype=float),
            "confidence": (edges[:-1] + edges[1:]) / 2}


def _every_figure():
    """One figure of every figure function of viz."""
    xs = ys = np.linspace(-1, 1, 4)
    points = [(np.zeros((2, 2)), np.array([0, 1]), np.array([False, True]))]
    return {
        "slider": _slider(),
        "loss curves": viz.loss_curves_figure("gce:q={}", [0.5, 1.0], param_name="q", points=10, title="GCE"),
        "heatmap": viz.heatmap_figure(np.eye(10), [f"class {k}" for k in range(10)], title="T"),
        "reliability": viz.reliability_figure({"ce": _rel([50, 50], [0.2, 0.9])}),
        "history": viz.history_figure({"ce": [{"epoch": 1, "test_acc": 0.5, "memorised": 0.1}]}, title="h"),
        "bar": viz.bar_figure({"ce": [1.0, 2.0]}, ["x", "y"], title="b"),
        "simplex": viz.simplex_flow_figure({"CE": "ce", "GCE": "gce:q=0.7"}, steps=4, title="s"),
        "regions": viz.decision_regions_figure(xs, ys, {1: [np.zeros((4, 4))]}, ["CE"], points, cols=1, title="r"),
        "histogram": viz.py_histogram_figure({1: np.array([0.2, 0.9])}, np.array([False, True]), title="p"),
    }


def test_slider_steps_are_labelled_with_their_values():
    steps = _slider().layout.sliders[0].steps
    assert [s.label for s in steps] == ["0.1", "0.5", "2"]


def test_slider_labels_and_readout_are_legible():
    slider = _slider().layout.sliders[0]
    assert slider.font.size >= 12 and slider.currentvalue.font.size >= 12


def test_many_loss_steps_get_short_labels_that_all_show():
    # plotly hides step labels that are wider than a step: 7 long legend names show only every other one
    labels = [s.label for s in _slider(SEVEN_LOSSES).layout.sliders[0].steps]
    assert labels == ["CE", "GCE", "SCE", "NCE+RCE", "MAE", "bootstrap", "focal"]
    assert len(labels) * (7 * max(map(len, labels)) + 8) <= 560
    # few steps keep the full legend names; explicit labels win
    assert [s.label for s in _slider(SEVEN_LOSSES[:2]).layout.sliders[0].steps] == ["CE", "GCE (q = 0.7)"]
    fig = viz.slider_figure([1, 2], lambda v: [go.Scatter()], param_name="v", title="t", labels=["a", "b"])
    assert [s.label for s in fig.layout.sliders[0].steps] == ["a", "b"]
    with pytest.raises(ValueError, match="labels"):
        viz.slider_figure([1, 2], lambda v: [go.Scatter()], param_name="v", title="t", labels=["a"])


def test_legends_sit_below_the_plot_and_the_slider():
    fig = _slider()
    legend = fig.layout.legend
    assert (legend.orientation, legend.yref, legend.y, legend.yanchor) == ("h", "container", 0.0, "bottom")
    # the bottom margin holds the axis title, the slider and the legend: the plot area keeps its height
    assert fig.layout.margin.b >= 150 and fig.layout.height - fig.layout.margin.b - fig.layout.margin.t >= 240


@pytest.mark.parametrize("name", list(_every_figure()))
def test_every_figure_has_a_title_under_the_toolbar_a_legend_below_and_no_width(name):
    fig = _every_figure()[name]
    title = fig.layout.title
    assert title.text
    # the toolbar (about 30 px) sits at the top right of the container: the title starts below it
    assert (title.yref, title.y, title.yanchor) == ("container", 1.0, "top") and title.pad.t >= 30
    lines = title.text.count("<br>") + 1
    assert fig.layout.margin.t >= title.pad.t + lines * title.font.size
    assert fig.layout.legend.yref == "container" and fig.layout.legend.yanchor == "bottom"
    assert fig.layout.width is None  # responsive: the figure fills the page's column


def test_titles_are_wrapped_to_a_phone_and_required():
    fig = viz.page_layout(go.Figure(), "a long title that says what the figure shows, for a reader on a phone")
    assert all(len(line) <= 44 for line in fig.layout.title.text.split("<br>"))  # 7.3 px each: 358 px
    assert fig.layout.margin.t >= fig.layout.title.pad.t + 2 * 16
    with pytest.raises(ValueError, match="title"):
        viz.page_layout(go.Figure())
    with pytest.raises(TypeError, match="title"):
        viz.heatmap_figure(np.eye(2))


def test_heatmaps_keep_every_column_and_a_flat_colour_bar():
    labels = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    fig = viz.heatmap_figure(np.full((10, 10), 0.1), labels, title="T")
    assert list(fig.layout.xaxis.tickvals) == labels and list(fig.layout.yaxis.tickvals) == labels
    bar = fig.data[0].colorbar
    assert bar.orientation == "h" and bar.y < 0  # under the plot, not beside it (lost on a phone)
    assert fig.layout.xaxis.tickangle != 0 and fig.data[0].textfont.size <= 10


def test_reliability_leaves_out_near_empty_bins_and_sizes_markers_by_count():
    # a bin of 2 samples out of 1000 has accuracy 0 or 1: it is noise, not calibration
    rel = _rel([2, 300, 698, 0], [0.0, 0.5, 0.8, np.nan])
    fig = viz.reliability_figure({"gce:q=0.7": rel}, title="r")
    diagonal, curve = fig.data
    assert list(diagonal.x) == [0, 1] and list(diagonal.y) == [0, 1]
    assert list(curve.x) == pytest.approx([0.375, 0.625]) and list(curve.y) == pytest.approx([0.5, 0.8])
    assert curve.marker.size[0] < curve.marker.size[1]
    assert curve.name == "GCE (q = 0.7)" and curve.line.color == viz.LOSS_STYLES["gce"][0]


def test_history_traces_colour_the_loss_and_dash_the_metric():
    hist = [{"epoch": 1, "test_acc": 0.5, "memorised": 0.1}, {"epoch": 2, "test_acc": 0.6, "memorised": 0.3}]
    acc, mem = viz.history_traces("gce:q=0.7", hist)
    assert [acc.name, mem.name] == ["GCE (q = 0.7): test accuracy", "GCE (q = 0.7): memorised"]
    assert acc.line.color == mem.line.color == viz.LOSS_STYLES["gce"][0] and acc.line.dash != mem.line.dash
    ref_acc, _ = viz.history_traces("ce", hist, reference=True)
    assert ref_acc.line.width < acc.line.width and ref_acc.line.dash == acc.line.dash
    # a slider over losses with CE as the fixed reference: every step keeps the loss's colour
    fig = viz.slider_figure(["gce:q=0.7", "mae"], lambda s: viz.history_traces(s, hist), param_name="loss",
                            title="h", fixed_traces=viz.history_traces("ce", hist, reference=True))
    assert [t.line.color for t in fig.data] == [viz.LOSS_STYLES[n][0] for n in ("ce", "ce", "gce", "gce", "mae", "mae")]


def _ends(fig, step):
    """The end points of the routes that slider step ``step`` shows."""
    visible = fig.layout.sliders[0].steps[step].args[0]["visible"]
    (trace,) = [t for t, v in zip(fig.data, visible) if v and ": after" in (t.name or "")]
    return np.c_[trace.x, trace.y]


def test_simplex_routes_are_gradient_descent_through_the_real_loss():
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3.0) / 2.0]])
    fig = viz.simplex_flow_figure({"CE": "ce"}, title="s", steps=4, updates=1, lr=0.5)
    # one step of CE on the logits z = log p: z - lr (p - e_0), then softmax
    p = np.array([[1, 1, 2], [1, 2, 1], [2, 1, 1]]) / 4.0
    z = np.log(p) - 0.5 * (p - np.eye(3)[0])
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.testing.assert_allclose(np.sort(_ends(fig, 0), axis=0), np.sort(q @ corners, axis=0), atol=1e-4)


def test_the_simplex_slider_visibly_changes_the_figure():
    fig = viz.simplex_flow_figure({"CE": "ce", "GCE": "gce:q=0.7", "MAE": "mae"}, title="s")
    ce, gce, mae = (_ends(fig, k) for k in range(3))
    # the end points move by a good part of the triangle's side (1) between the steps
    assert np.linalg.norm(ce - gce, axis=1).max() > 0.15 and np.linalg.norm(ce - mae, axis=1).max() > 0.3
    assert np.linalg.norm(ce - gce, axis=1).mean() > 0.05
    assert fig.layout.legend.yref == "container" and fig.layout.height <= 650


def test_decision_regions_fit_one_laptop_screen_and_show_what_changed():
    xs = ys = np.linspace(-1, 1, 5)
    first, later = np.zeros((5, 5)), np.zeros((5, 5))
    later[:, 3:] = 2
    regions = {10: [first] * 6, 200: [later] * 6}
    points = [(np.zeros((2, 2)), np.array([0, 1]), np.array([False, True]))] * 6
    fig = viz.decision_regions_figure(xs, ys, regions, [f"panel {k}" for k in range(6)], points, cols=3,
                                      title="predicted class (background) and training labels (points)")
    # 1366 x 768 less the browser's bars leaves about 650 px for the figure, its slider and its legend
    assert fig.layout.height <= 650 and fig.layout.sliders
    heat = [t for t in fig.data if t.type == "heatmap"]
    before, after = np.asarray(heat[0].z), np.asarray(heat[6].z)
    assert (before == 0).all()  # the first step: every class as it is, drawn light
    assert (after[:, 3:] == 2 + 3).all() and (after[:, :3] == 0).all()  # changed cells drawn saturated


def test_a_mapping_of_matrices_gives_one_heatmap_per_slider_step():
    fig = viz.heatmap_figure({0.0: np.eye(3), 0.5: np.full((3, 3), 1 / 3)}, ["a", "b", "c"], zmax=1,
                             param_name="η", title="T", active=1)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["0", "0.5"] and fig.layout.sliders[0].active == 1
    assert [list(s.args[0]["visible"]) for s in steps] == [[True, False], [False, True]]
    np.testing.assert_allclose(fig.data[1].z, np.round(np.full((3, 3), 1 / 3), 3))
    assert all(t.zmax == 1 and t.colorbar.orientation == "h" for t in fig.data) and fig.layout.width is None


def test_laying_out_twice_keeps_the_title():
    fig = viz.page_layout(go.Figure(), "a long title that says what the figure shows, for a reader on a phone")
    once = fig.layout.title.text
    assert viz.page_layout(fig).layout.title.text == once


def test_a_history_of_several_metrics_leaves_their_names_to_the_legend():
    hist = [{"epoch": 1, "test_acc": 0.5, "memorised": 0.1, "fit_clean": 0.6}]
    fig = viz.history_figure({"ce": hist}, ("fit_clean", "memorised", "test_acc"), title="t")
    assert fig.layout.yaxis.title.text == "fraction" and len(fig.data) == 3
    one = viz.history_figure({"ce": hist}, "test_acc", title="t")
    assert one.layout.yaxis.title.text not in ("", "fraction")
