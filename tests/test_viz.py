"""The shared slider helper: one step per value, each step shows exactly its traces, data is the real curve."""
import json
import subprocess
import sys

import numpy as np
import plotly.graph_objects as go
import pytest

import noisyloss
from noisyloss import viz


def test_slider_steps_toggle_exactly_their_traces():
    values = [0.1, 0.5, 0.9]
    fixed = [go.Scatter(x=[0, 1], y=[0, 1], name="ref")]
    fig = viz.slider_figure(values, lambda v: [go.Scatter(x=[0, 1], y=[v, v]), go.Scatter(x=[0], y=[2 * v])],
                            param_name="a", title="t", fixed_traces=fixed, active=2)
    steps = fig.layout.sliders[0].steps
    assert len(steps) == 3 and fig.layout.sliders[0].active == 2
    assert [s.label for s in steps] == ["0.1", "0.5", "0.9"]
    for i, step in enumerate(steps):
        visible = step.args[0]["visible"]
        assert visible[0] is True  # the fixed reference stays
        shown = [k for k, v in enumerate(visible[1:], start=1) if v]
        assert [fig.data[k].y[0] for k in shown] == pytest.approx([values[i], 2 * values[i]])
    # the initial state equals the active step
    assert [bool(t.visible) for t in fig.data] == steps[2].args[0]["visible"]


def test_slider_figure_rejects_bad_input():
    with pytest.raises(ValueError, match="values"):
        viz.slider_figure([], lambda v: [], param_name="a", title="t")
    with pytest.raises(ValueError, match="active"):
        viz.slider_figure([1, 2], lambda v: [go.Scatter()], param_name="a", title="t", active=5)


def test_loss_curves_are_the_formula_and_small():
    qs = [0.25, 0.5, 1.0]
    fig = viz.loss_curves_figure("gce:q={}", qs, param_name="q", include=("loss", "grad_y"), points=50,
                                  title="GCE")
    assert len(fig.to_json()) < 1_000_000
    step = fig.layout.sliders[0].steps[1]  # q = 0.5
    shown = [fig.data[k] for k, v in enumerate(step.args[0]["visible"]) if v and fig.data[k].name == "GCE (q = 0.5)"]
    loss_trace, grad_trace = shown
    p = np.asarray(loss_trace.x)
    np.testing.assert_allclose(loss_trace.y, (1 - p ** 0.5) / 0.5, atol=2e-4)
    # dL/dz_y = -p^q (1 - p) for GCE (softmax Jacobian)
    np.testing.assert_allclose(grad_trace.y, -(p ** 0.5) * (1 - p), atol=2e-4)
    refs = [t for t in fig.data if t.name == "CE" and t.xaxis in (None, "x")]
    np.testing.assert_allclose(refs[0].y, -np.log(np.asarray(refs[0].x)), atol=2e-4)


def test_heatmap_reliability_history_figures():
    T = np.array([[0.6, 0.4], [0.0, 1.0]])
    fig = viz.heatmap_figure(T, ["a", "b"], title="T")
    assert np.allclose(fig.data[0].z, T)
    rel = {"edges": np.linspace(0, 1, 5), "accuracy": np.array([np.nan, 0.3, 0.6, 0.9]),
           "confidence": np.array([np.nan, 0.4, 0.6, 0.9]), "count": np.array([0, 3, 3, 3])}
    fig = viz.reliability_figure({"ce": rel})
    assert list(fig.data[1].x) == pytest.approx([0.4, 0.6, 0.9])  # at the bins' mean confidence, empty bin dropped
    hist = [{"epoch": 1, "test_acc": 0.5, "memorised": None}, {"epoch": 2, "test_acc": 0.7, "memorised": 0.1}]
    fig = viz.history_figure({"ce": hist}, title="h")
    assert list(fig.data[0].y) == [0.5, 0.7] and list(fig.data[1].x) == [2]
    json.dumps(fig.to_plotly_json(), default=str)


def test_value_and_derivative_is_the_loss_and_its_derivative():
    r = np.linspace(-3, 3, 61)
    value, derivative = viz.value_and_derivative("huber", r, label="h", delta=0.5)
    # Huber (delta = 0.5): r^2/2 inside, delta (|r| - delta/2) outside; influence clip(r, -delta, delta)
    expected = np.where(np.abs(r) <= 0.5, r ** 2 / 2, 0.5 * (np.abs(r) - 0.25))
    np.testing.assert_allclose(value.y, expected, atol=1e-5)
    np.testing.assert_allclose(derivative.y, np.clip(r, -0.5, 0.5), atol=1e-5)
    assert (value.xaxis, value.yaxis, derivative.xaxis, derivative.yaxis) == ("x", "y", "x2", "y2")
    assert value.legendgroup == derivative.legendgroup == "h" and derivative.showlegend is False


def test_slider_colours_one_per_curve_and_stable_across_steps():
    m = np.linspace(-2, 2, 5)
    fig = viz.slider_figure([0.0, 2.0], lambda g: viz.value_and_derivative("focal", m, label=f"f{g}", gamma=g)
                            + viz.value_and_derivative("hinge", m, label=f"h{g}"),
                            param_name="γ", title="t", subplots=(1, 2))
    colours = [t.line.color for t in fig.data]
    # per step: focal value + derivative share a colour, hinge gets the next one; both steps alike
    assert colours == [viz.PALETTE[0]] * 2 + [viz.PALETTE[1]] * 2 + [viz.PALETTE[0]] * 2 + [viz.PALETTE[1]] * 2


def test_bar_figure_error_bars():
    fig = viz.bar_figure({"ce": [0.5, 0.7], "mae": [0.9, 0.8]}, ["sym:0.2", "sym:0.4"], title="b",
                         errors={"ce": [0.01, 0.123456]})
    assert list(fig.data[0].error_y.array) == [0.01, 0.1235] and fig.data[0].error_y.type == "data"
    assert fig.data[1].error_y.array is None  # no errors given for mae
    with pytest.raises(ValueError, match="errors"):
        viz.bar_figure({"ce": [0.5, 0.7]}, ["a", "b"], title="b", errors={"ce": [0.1]})
    with pytest.raises(ValueError, match="errors"):
        viz.bar_figure({"ce": [0.5, 0.7]}, ["a", "b"], title="b", errors={"gce": [0.1, 0.2]})


def test_importing_viz_leaves_plotly_alone_and_book_selects_the_renderer():
    code = ("import plotly.io as pio; before = pio.renderers.default; import noisyloss.viz; "
            "assert pio.renderers.default == before and 'noisyloss' not in pio.renderers, pio.renderers.default; "
            "from noisyloss import book; assert pio.renderers.default == before; "
            "print(book.use_renderer(), pio.renderers.default)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["noisyloss", "noisyloss"]


def test_book_renderer_sends_the_figure_without_plotly_js():
    from noisyloss import book

    bundle = book.BookRenderer().to_mimebundle(go.Figure(go.Scatter(x=[0, 1], y=[1, 2])).to_plotly_json())
    assert bundle["application/vnd.plotly.v1+json"]["data"][0]["y"] == [1, 2]
    assert "Plotly.newPlot" in bundle["text/html"] and len(bundle["text/html"]) < 20_000  # no 4 MB plotly.js


def test_every_registered_loss_has_one_colour_and_one_name():
    # the package's own losses (another test may have registered one of its own in this process)
    names = [n for n, e in noisyloss.registry.LOSSES.items() if e.cls.__module__.startswith("noisyloss.")]
    assert len(names) == 43 and set(names) <= set(viz.LOSS_STYLES)
    colours = [viz.LOSS_STYLES[n][0].lower() for n in names]
    labels = [viz.LOSS_STYLES[n][1] for n in names]
    assert len(set(colours)) == len(names) and len(set(labels)) == len(names)
    # every spelling of a loss keeps its colour; the legend names the parameters the spec writes
    assert viz.loss_colour("gce:q=0.3") == viz.loss_colour("gce") == viz.LOSS_STYLES["gce"][0]
    assert viz.loss_label("gce:q=0.7") == "GCE (q = 0.7)"
    assert viz.loss_label("gce") == "GCE"
    assert viz.loss_label("bootstrap:beta=0.8,hard=true") == "bootstrap (β = 0.8, hard)"
    assert viz.loss_label("sce_cifar100") == "SCE (α = 6, β = 0.1, A = code)"
    assert viz.loss_label("not a loss") == "not a loss"
    assert viz.loss_colour("not a loss") == viz.loss_colour("not a loss") in viz.PALETTE


def test_figures_name_and_colour_losses_from_the_one_map():
    fig = viz.history_figure({"gce:q=0.7": [{"epoch": 1, "test_acc": 0.5}]}, "test_acc", title="h")
    assert fig.data[0].name == "GCE (q = 0.7): test accuracy" and fig.data[0].line.color == viz.LOSS_STYLES["gce"][0]
    bars = viz.bar_figure({"ce": [0.1, 0.2], "nce_rce": [0.3, 0.4]}, ["a", "b"], title="b")
    assert [t.name for t in bars.data] == ["CE", "NCE+RCE"]
    assert [t.marker.color for t in bars.data] == [viz.LOSS_STYLES["ce"][0], viz.LOSS_STYLES["nce_rce"][0]]


def test_live_loss_curves_is_a_slider_over_one_output_and_redraws_through_the_loss():
    widgets = pytest.importorskip("ipywidgets")
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    box = viz.live_loss_curves("gce:q={}", [0.1, 0.9], param_name="q", num_classes=10)
    slider, out = box.children
    assert isinstance(slider, widgets.FloatSlider) and isinstance(out, widgets.Output)
    assert (slider.min, slider.max, slider.value) == (0.1, 0.9, 0.9)
    slider.value = 0.3  # redraws: the real loss at q = 0.3, no error
