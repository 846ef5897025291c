"""Figures for the book: plotly figures with baked-in sliders (work in static HTML, no kernel), built
by :func:`slider_figure` (all traces computed up front, each step shows exactly its own), laid out by
:func:`page_layout`, losses coloured and named by :data:`LOSS_STYLES`; ipywidgets live versions."""
from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import textwrap
import zlib

import numpy as np
import torch

try:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
except ModuleNotFoundError as err:  # the core install has no plotly
    raise ModuleNotFoundError("noisyloss.viz draws with plotly, part of the book extra: "
                              "pip install 'noisyloss[book]'") from err

from ._checks import check_int, check_str
from .analysis import loss_vs_py, simplex_points
from .registry import functional_loss, parse_spec
from .regression import loss_curve

__all__ = ["PALETTE", "LOSS_STYLES", "loss_colour", "loss_label", "page_layout", "slider_figure",
           "loss_curves_figure", "value_and_derivative", "live_loss_curves", "heatmap_figure",
           "reliability_figure", "history_traces", "history_figure", "bar_figure", "simplex_flow_figure",
           "decision_regions_figure", "py_histogram_figure"]

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
           "#7f7f7f", "#bcbd22")

#: one colour and one display name per loss, in every figure of the book: registry names, and the
#: regression and margin losses of :mod:`noisyloss.regression` (``mae`` is one idea in both)
LOSS_STYLES: Dict[str, Tuple[str, str]] = {
    "ce": ("#222222", "CE"), "ls": ("#0d2a63", "label smoothing"), "mae": ("#7f7f7f", "MAE"),
    "gce": ("#2ca02c", "GCE"), "rce": ("#9467bd", "RCE"), "sce": ("#d62728", "SCE"), "nce": ("#17becf", "NCE"),
    "nce_rce": ("#ff7f0e", "NCE+RCE"), "focal": ("#e377c2", "focal"), "bootstrap": ("#8c564b", "bootstrap"),
    "peer": ("#bcbd22", "peer loss"), "nl": ("#1f77b4", "NL"), "ols": ("#6c7c32", "OLS"),
    "elr": ("#da16ff", "ELR"), "gce_prune": ("#00a08b", "GCE, pruned in rounds"),
    "forward": ("#511cfb", "forward correction"), "backward": ("#b68100", "backward correction"),
    "nls": ("#750d86", "NLS"), "poly1": ("#eb663b", "Poly-1"), "taylor": ("#778aae", "Taylor CE"),
    "nfl": ("#fc0080", "NFL"), "ngce": ("#6c4516", "NGCE"), "nmae": ("#a777f1", "NMAE"), "nrce": ("#af0038", "NRCE"),
    "agce": ("#2e91e5", "AGCE"), "aul": ("#862a16", "AUL"), "ael": ("#620042", "AEL"), "nnce": ("#1616a7", "NNCE"),
    "nnfl": ("#da60ca", "NNFL"), "apl": ("#b2828d", "APL"), "nce_mae": ("#1c8356", "NCE+MAE"),
    "nfl_rce": ("#c4451c", "NFL+RCE"), "nfl_mae": ("#325a9b", "NFL+MAE"), "ngce_mae": ("#90ad1c", "NGCE+MAE"),
    "ngce_rce": ("#b10da1", "NGCE+RCE"), "nce_agce": ("#3283fe", "NCE+AGCE"), "nce_aul": ("#85660d", "NCE+AUL"),
    "nce_ael": ("#782ab6", "NCE+AEL"), "nfl_agce": ("#00b5f7", "NFL+AGCE"), "nfl_aul": ("#dc587d", "NFL+AUL"),
    "nfl_ael": ("#479b55", "NFL+AEL"), "anl_ce": ("#fe00ce", "ANL-CE"), "anl_fl": ("#6a76fc", "ANL-FL"),
    "mse": ("#f6222e", "MSE"), "mbe": ("#6e899c", "MBE"), "huber": ("#86ce00", "Huber"),
    "log-cosh": ("#feaf16", "log-cosh"), "quantile": ("#7e7dcd", "quantile"), "0-1": ("#b00068", "0-1"),
    "logistic": ("#aa0dfe", "logistic"), "hinge": ("#fd3216", "hinge"), "exponential": ("#ff9616", "exponential"),
    "sigmoid": ("#bc7196", "sigmoid"),
}
_SYMBOLS = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "label_smoothing": "ε",
            "lam": "λ", "tau": "τ", "smooth_rate": "r"}


def _base(spec: str) -> Tuple[str, dict]:
    """A spec's loss name and parameters (those the spec writes), or ``(spec, {})`` for a name that is
    not a registered loss (a regression or margin loss, a label of the caller's)."""
    name, _, rest = check_str("spec", spec).partition(":")
    try:
        loss, params = parse_spec(spec)
    except (TypeError, ValueError):
        return name, {}
    given = dict(parse_spec(f"{loss}:{rest}")[1]) if rest else {}
    return loss, {k: v for k, v in params.items() if k in given or name != loss}


def loss_colour(spec: str) -> str:
    """The loss's colour in :data:`LOSS_STYLES` (any spelling of it: ``"gce:q=0.5"`` is GCE's green);
    an unknown name gets a fixed colour of :data:`PALETTE` chosen by its name."""
    loss, _ = _base(spec)
    if loss in LOSS_STYLES:
        return LOSS_STYLES[loss][0]
    return PALETTE[zlib.crc32(loss.encode()) % len(PALETTE)]


def loss_label(spec: str) -> str:
    """The legend name of a spec: ``"gce:q=0.7"`` -> ``"GCE (q = 0.7)"``, ``"ce"`` -> ``"CE"``, a preset
    -> its loss with the preset's parameters; a name that is not a loss is returned as it is."""
    loss, params = _base(spec)
    if loss not in LOSS_STYLES:
        return spec
    shown = [_SYMBOLS.get(k, k) if v is True else f"{_SYMBOLS.get(k, k)} = {_fmt(v)}"
             for k, v in params.items() if v is not False and v is not None]
    name = LOSS_STYLES[loss][1]
    return f"{name} ({', '.join(shown)})" if shown else name


def _round(a, digits: int = 5) -> list:
    """Arrays as short JSON lists (rounded) to keep each figure small."""
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float, np.floating, np.integer)) else str(value)


def _axes(j: int) -> dict:
    """The ``xaxis``/``yaxis`` names of panel ``j`` (0-based) of a ``make_subplots`` grid."""
    return dict(xaxis=f"x{j + 1 if j else ''}", yaxis=f"y{j + 1 if j else ''}")


#: the toolbar plotly draws at the top right of a figure is about this many pixels high: titles sit under it
_MODEBAR = 34
#: characters of a title line: at 16 px about 7.3 px each, a 390 px phone's 358 px figure holds this many
_TITLE_LINE = 44


def page_layout(fig: go.Figure, title: Optional[str] = None, *, slider: bool = False) -> go.Figure:
    """The one layout of every figure in the book; returns ``fig``.

    The title (``title``, or the one ``fig`` has; a figure without one is refused) is wrapped to a
    phone's width and set under plotly's toolbar; the legend goes under the plot (under the slider,
    if any) in horizontal rows that wrap; no width is fixed, so the figure fills the page's column."""
    text = title if title is not None else fig.layout.title.text
    if not text:
        raise ValueError("every figure of the book needs a title: pass title=...")
    lines = textwrap.wrap(text.replace("<br>", " "), _TITLE_LINE)  # again: a figure laid out twice keeps its title
    bottom = 160 if slider else 100
    top = _MODEBAR + 22 * len(lines) + 12
    fig.update_layout(
        title=dict(text="<br>".join(lines), x=0.0, xref="container", xanchor="left", y=1.0, yref="container",
                   yanchor="top", pad=dict(t=_MODEBAR, l=12), font=dict(size=16)),
        legend=dict(orientation="h", yref="container", y=0.0, yanchor="bottom", x=0.0, xanchor="left",
                    entrywidthmode="pixels", entrywidth=0, font=dict(size=12)),
        template="plotly_white", width=None, margin=dict(t=top, b=bottom),
        height=max(fig.layout.height or 450, 240 + top + bottom))
    return fig


def _keep_colour(trace: go.BaseTraceType, position: int) -> None:
    """Give a scatter trace without an explicit colour the palette colour of ``position``."""
    if isinstance(trace, go.Scatter) and trace.line.color is None and trace.marker.color is None:
        trace.line.color = trace.marker.color = PALETTE[position % len(PALETTE)]


#: the slider's length in pixels in the book's column on a laptop screen, and a step label's letter width
_SLIDER_ROOM, _LETTER = 560, 7.0


def _step_labels(values: Sequence, labels: Optional[Sequence[str]]) -> List[str]:
    """The slider's step labels: ``labels``, or each value as a number or a loss's legend name; when
    those would not all fit side by side, the loss names without their parameters."""
    if labels is not None:
        if len(labels) != len(values):
            raise ValueError(f"labels must have one entry per value ({len(values)}), got {len(labels)}")
        return [str(label) for label in labels]
    full = [loss_label(v) if isinstance(v, str) else _fmt(v) for v in values]
    short = [label.split(" (")[0] for label in full]
    fits = len(values) * (_LETTER * max(map(len, full)) + 8) <= _SLIDER_ROOM
    return full if fits or len(set(short)) < len(short) else short


def slider_figure(values: Sequence, make_traces: Callable[[object], List[go.BaseTraceType]], *, param_name: str,
                  title: str, xaxis_title: str = "", yaxis_title: str = "", active: Optional[int] = None,
                  fixed_traces: Sequence[go.BaseTraceType] = (), layout: Optional[dict] = None,
                  subplots: Optional[Tuple[int, int]] = None, labels: Optional[Sequence[str]] = None) -> go.Figure:
    """A figure with one slider over ``values``.

    ``make_traces(value)`` returns the traces for one parameter value (all computed now); step ``i``
    of the slider shows exactly the traces of ``values[i]`` plus ``fixed_traces`` (e.g. reference
    curves).  Scatter traces without a colour get palette colours by their order within the step,
    one colour per ``legendgroup``.  With ``subplots=(rows, cols)`` a trace may carry ``xaxis``/``yaxis`` names of a
    ``make_subplots`` grid (use :func:`plotly.subplots.make_subplots` layout conventions).  ``labels``
    names the steps (default: the values, loss specs by their legend names, shortened so that every
    step's label shows).
    """
    values = list(values)
    if not values:
        raise ValueError("values must be a non-empty sequence of parameter values")
    active = len(values) // 2 if active is None else active
    if not 0 <= active < len(values):
        raise ValueError(f"active must be in [0, {len(values) - 1}], got {active}")
    names = _step_labels(values, labels)
    fig = make_subplots(rows=subplots[0], cols=subplots[1], horizontal_spacing=0.1) if subplots else go.Figure()
    for trace in fixed_traces:
        trace.visible = True
        fig.add_trace(trace)
    n_fixed = len(fixed_traces)
    owner: List[int] = []
    for i, value in enumerate(values):
        # the k-th curve of every step gets the k-th palette colour (traces of one legendgroup count as
        # one curve), so that the 'same' curve keeps its colour while the slider moves
        curves: Dict[object, int] = {}
        for trace in make_traces(value):
            trace.visible = i == active
            _keep_colour(trace, curves.setdefault(trace.legendgroup or id(trace), len(curves)))
            fig.add_trace(trace)
            owner.append(i)
    steps = [dict(method="restyle", args=[{"visible": [True] * n_fixed + [o == i for o in owner]}], label=name)
             for i, name in enumerate(names)]
    fig.update_layout(
        sliders=[dict(active=active, steps=steps, pad=dict(t=50), font=dict(size=12),
                      currentvalue=dict(prefix=f"{param_name} = ", font=dict(size=14)))],
        margin=dict(l=60, r=40), height=560)
    page_layout(fig, title, slider=True)
    if subplots is None:
        fig.update_xaxes(title_text=xaxis_title)
        fig.update_yaxes(title_text=yaxis_title)
    if layout:
        fig.update_layout(**layout)
    return fig


def value_and_derivative(
    loss: Union[str, Callable], x: Sequence[float], *, label: str, line: Optional[dict] = None, **params
) -> List[go.Scatter]:
    """Two traces of one regression or margin loss for a 1×2 ``subplots`` figure: its value at ``x``
    (left panel) and its autograd derivative (right panel), from
    :func:`noisyloss.regression.loss_curve`, as one legend entry (``legendgroup=label``)."""
    value, derivative = loss_curve(loss, x, **params)
    xs = _round(x, 6)
    return [go.Scatter(x=xs, y=_round(value), name=label, legendgroup=label, line=line, xaxis="x", yaxis="y"),
            go.Scatter(x=xs, y=_round(derivative), name=label, legendgroup=label, showlegend=False, line=line,
                       xaxis="x2", yaxis="y2")]


_DASHES = ("solid", "dot", "dashdot")
_YLABEL = {"loss": "loss L", "grad_y": "∂L/∂z_y", "grad_norm": "‖∂L/∂z‖"}


def _check_curves(values: Sequence, include: Sequence[str]) -> None:
    """The parameter values and the panels of :func:`loss_curves_figure` and :func:`live_loss_curves`."""
    if not len(values):
        raise ValueError("values must be a non-empty sequence of parameter values")
    if not include:
        raise ValueError(f"include must name at least one of {tuple(_YLABEL)}, got {include!r}")
    for key in include:
        if key not in _YLABEL:
            raise ValueError(f"include entries must be in {tuple(_YLABEL)}, got {key!r}")


def loss_curves_figure(template: Union[str, Sequence[str]], values: Sequence, *, param_name: str, title: str,
                       num_classes: int = 10, include: Sequence[str] = ("loss", "grad_y"),
                       references: Sequence[str] = ("ce", "mae"), points: int = 120, p_min: float = 1e-3,
                       active: Optional[int] = None) -> go.Figure:
    """Loss (and gradient) vs the true-class probability ``p_y``, with a slider over a parameter.

    ``template`` is a spec with ``{}`` for the parameter, e.g. ``"gce:q={}"`` (or several such
    templates, drawn together).  Curves come from :func:`noisyloss.analysis.loss_vs_py`, i.e. autograd
    through the real loss functions (several templates: solid, dotted, dash-dotted, in their order; each
    in its loss's colour).  ``references`` are drawn dashed and stay fixed; ``active`` is
    the index of the value the slider starts at (default: the middle one).
    """
    templates = [template] if isinstance(template, str) else list(template)
    _check_curves(values, include)
    p = np.linspace(p_min, 1.0 - 1e-6, points)
    cols = len(include)

    def curves(spec: str, dash: str, width: float) -> List[go.Scatter]:
        curve = loss_vs_py(spec, p, num_classes=num_classes)
        return [go.Scatter(x=_round(p, 6), y=_round(getattr(curve, key)), name=loss_label(spec), legendgroup=spec,
                           showlegend=j == 0, line=dict(color=loss_colour(spec), width=width, dash=dash), **_axes(j))
                for j, key in enumerate(include)]

    fixed = [t for ref in references for t in curves(ref, "dash", 1.5)]

    def make(value) -> list:
        return [t for k, tpl in enumerate(templates) for t in curves(tpl.format(value), _DASHES[k % len(_DASHES)], 2.5)]

    fig = slider_figure(values, make, param_name=param_name, title=title, fixed_traces=fixed, active=active,
                        subplots=(1, cols) if cols > 1 else None,
                        xaxis_title="p_y (probability of the labelled class)", yaxis_title=_YLABEL[include[0]])
    if cols > 1:
        for j, key in enumerate(include):
            fig.update_xaxes(title_text="p_y", row=1, col=j + 1)
            fig.update_yaxes(title_text=_YLABEL[key], row=1, col=j + 1)
    return fig


def live_loss_curves(template: str, values: Sequence[float], *, param_name: str, num_classes: int = 10,
                     include: Sequence[str] = ("loss", "grad_y"), references: Sequence[str] = ("ce", "mae"),
                     points: int = 200):
    """ipywidgets version of :func:`loss_curves_figure` for a live kernel (Jupyter, Colab): a continuous
    slider from ``min(values)`` to ``max(values)`` recomputes the curves through the real loss on every
    move (drawn with matplotlib into one ``Output`` widget, in the losses' colours and names)."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    _check_curves(values, include)
    lo, hi = float(min(values)), float(max(values))
    slider = widgets.FloatSlider(value=float(values[len(values) // 2]), min=lo, max=hi,
                                 step=(hi - lo) / 100 or 0.01, description=param_name, continuous_update=False)
    out = widgets.Output()
    p = np.linspace(1e-3, 1 - 1e-6, points)
    refs = {ref: loss_vs_py(ref, p, num_classes=num_classes) for ref in references}

    def draw(value: float) -> None:
        spec = template.format(round(value, 4))
        curves = {**refs, spec: loss_vs_py(spec, p, num_classes=num_classes)}
        with out:
            out.clear_output(wait=True)
            fig, axs = plt.subplots(1, len(include), figsize=(5 * len(include), 3.6), squeeze=False)
            for ax, key in zip(axs[0], include):
                for name, c in curves.items():
                    ax.plot(p, getattr(c, key), "-" if name == spec else "--", lw=2.5 if name == spec else 1,
                            color=loss_colour(name), label=loss_label(name))
                ax.set_xlabel("p_y")
                ax.set_ylabel(_YLABEL[key])
                ax.legend(fontsize=8)
            plt.tight_layout()
            plt.show()

    widgets.interactive_output(draw, {"value": slider})
    return widgets.VBox([slider, out])


def heatmap_figure(matrix, labels: Optional[Sequence[str]] = None, *, title: str, zmax: Optional[float] = None,
                   text: bool = True, param_name: str = "", active: Optional[int] = None) -> go.Figure:
    """Heatmap of a (C, C) matrix such as a noise transition matrix T[true, observed]; a mapping
    ``{step: matrix}`` gives one heatmap per step under a slider named ``param_name``.

    Readable on a phone: every column keeps its tick label (turned when the labels are long), the
    colour bar lies flat under the plot, and the cell values are written small."""
    matrices = {k: np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64)
                for k, v in (matrix.items() if isinstance(matrix, Mapping) else [(None, matrix)])}
    m = next(iter(matrices.values()))
    if m.ndim != 2 or any(v.shape != m.shape for v in matrices.values()):
        raise ValueError(f"matrix must be 2-D (a mapping: matrices of one shape), got shapes "
                         f"{sorted({v.shape for v in matrices.values()})}")
    labels = list(labels) if labels is not None else [str(i) for i in range(m.shape[1])]
    if len(labels) != m.shape[1]:
        raise ValueError(f"labels must name the {m.shape[1]} columns of matrix, got {len(labels)} labels")
    written = text and m.shape[0] <= 12
    top = zmax if zmax is not None else max(float(v.max()) for v in matrices.values())

    def heat(key) -> List[go.Heatmap]:
        v = matrices[key]
        return [go.Heatmap(z=_round(v, 3), x=labels, y=labels[: m.shape[0]], colorscale="Blues", zmin=0, zmax=top,
                           text=_round(v, 2) if written else None, texttemplate="%{text}" if written else None,
                           textfont=dict(size=10), hovertemplate="true %{y} → observed %{x}: %{z}<extra></extra>",
                           colorbar=dict(orientation="h", y=-0.03, yanchor="top", thickness=12, len=0.8))]

    fig = (slider_figure(list(matrices), heat, param_name=param_name, title=title, active=active)
           if isinstance(matrix, Mapping) else page_layout(go.Figure(heat(None)), title))
    longest = max(len(str(label)) for label in labels)
    room = fig.layout.margin.t + 30 + (6 * longest if longest > 3 else 16)  # the title, then the x axis above the plot
    fig.update_layout(xaxis=dict(title="observed (noisy) label", tickmode="array", tickvals=labels, side="top",
                                 tickangle=-60 if longest > 3 else 0),
                      yaxis=dict(title="true label", tickmode="array", tickvals=labels[: m.shape[0]],
                                 autorange="reversed"), height=room + fig.layout.margin.b + 340,
                      margin=dict(l=60, r=12, t=room))
    return fig


def reliability_figure(reliabilities: Mapping[str, dict], *, title: str = "Reliability diagram",
                       min_share: float = 0.01) -> go.Figure:
    """Reliability diagram(s): accuracy vs mean confidence per bin, from :func:`noisyloss.metrics.reliability`,
    one curve per loss (``reliabilities`` maps a loss spec to its bins), with the diagonal of perfect
    calibration.  A bin holding less than ``min_share`` of the samples is left out (its accuracy is
    noise: 0 or 1 for a single sample); each marker's area follows its bin's count."""
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                               line=dict(dash="dash", color="#999999")))
    for name, rel in reliabilities.items():
        if not isinstance(rel, Mapping) or "count" not in rel:
            raise TypeError(f"reliabilities must map a name to the bins of metrics.reliability(probs, labels), "
                            f"got {type(rel).__name__} for {name!r}")
        count = np.asarray(rel["count"], dtype=np.float64)
        keep = count >= max(min_share * count.sum(), 1.0)
        conf, acc = (np.asarray(rel[k], dtype=np.float64)[keep] for k in ("confidence", "accuracy"))
        size = 6 + 14 * np.sqrt(count[keep] / count.max())
        fig.add_trace(go.Scatter(x=_round(conf, 3), y=_round(acc, 4), mode="lines+markers", name=loss_label(name),
                                 customdata=count[keep].astype(int).tolist(),
                                 hovertemplate="confidence %{x}, accuracy %{y}, %{customdata} samples",
                                 line=dict(color=loss_colour(name)), marker=dict(size=_round(size, 1))))
    fig.update_layout(xaxis_title="confidence (max probability)", yaxis_title="accuracy",
                      height=460, xaxis_range=[0, 1], yaxis_range=[0, 1.02])
    return page_layout(fig, title)


#: legend names of the training-history metrics (``train.fit``'s keys); other keys are shown as given
_METRICS = {"test_acc": "test accuracy", "fit_clean": "clean samples fitted", "memorised": "memorised",
            "corrected": "corrected", "train_loss": "training loss"}


def history_traces(name: str, history: Sequence[dict], keys: Union[str, Sequence[str]] = ("test_acc", "memorised"),
                   *, reference: bool = False) -> List[go.Scatter]:
    """The training curves of one run (``name`` a loss spec) per epoch: the loss's colour, one dash style
    per metric key (solid, dotted, dash-dotted); a ``reference`` run (e.g. CE under a slider over other
    losses) is drawn thin and faint, keeping its colour and dashes."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    traces = []
    for j, key in enumerate(keys):
        pts = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
        if pts:
            x, y = zip(*pts)
            traces.append(go.Scatter(x=list(x), y=_round(y, 4), mode="lines", legendgroup=name,
                                     name=f"{loss_label(name)}: {_METRICS.get(key, key)}",
                                     opacity=0.5 if reference else 1.0,
                                     line=dict(color=loss_colour(name), dash=_DASHES[j % len(_DASHES)],
                                               width=1.2 if reference else 2.2)))
    return traces


def history_figure(histories: Mapping[str, Sequence[dict]], keys: Union[str, Sequence[str]] = ("test_acc", "memorised"),
                   *, title: str) -> go.Figure:
    """Training curves per epoch of several runs (loss spec -> history), drawn by :func:`history_traces`."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    fig = go.Figure([t for name, hist in histories.items() for t in history_traces(name, hist, keys)])
    # one metric names the axis; several are fractions that the legend names (a long axis title would run
    # into the title on a phone)
    axis = _METRICS.get(keys[0], keys[0]) if len(keys) == 1 else "fraction"
    fig.update_layout(xaxis_title="epoch", yaxis_title=axis, height=480, yaxis_range=[0, 1.02])
    return page_layout(fig, title)


def bar_figure(groups: Mapping[str, Sequence[float]], categories: Sequence[str], *, title: str,
               yaxis_title: str = "", errors: Optional[Mapping[str, Sequence[float]]] = None) -> go.Figure:
    """Grouped bars, e.g. per-class accuracy (categories) for several losses (groups); ``errors`` (some of
    ``groups``' keys, same lengths) draws error bars, e.g. the seeds' standard deviation (``seed_stats``)."""
    errors = errors or {}
    short = [name for name, vals in groups.items() if len(vals) != len(categories)]
    if short:
        raise ValueError(f"groups must have one value per category ({len(categories)}), got other lengths for {short}")
    wrong = [name for name, err in errors.items() if len(err) != len(groups.get(name, ()))]
    if wrong:
        raise ValueError(f"errors must have one value per category of a group of groups, got errors for {wrong}")
    fig = go.Figure([go.Bar(x=list(categories), y=_round(vals, 4), name=loss_label(name),
                            marker_color=loss_colour(name),
                            error_y=dict(type="data", array=_round(errors[name], 4)) if name in errors else None)
                     for name, vals in groups.items()])
    fig.update_layout(barmode="group", yaxis_title=yaxis_title, height=460)
    return page_layout(fig, title)


#: corners of the 3-class probability simplex in the plane: p = e_0, e_1, e_2
_CORNERS = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3.0) / 2.0]])


def _simplex_paths(spec: str, starts: np.ndarray, label: int, updates: int, lr: float) -> np.ndarray:
    """The predictions ``(updates + 1, n, 3)`` of gradient descent with step ``lr`` on the logits of
    ``n`` 3-class samples labelled ``label``, from the predictions ``starts`` (logits ``log p``),
    through the real loss of ``spec``."""
    fn = functional_loss(spec)
    z = torch.from_numpy(np.log(starts))
    target = torch.full((len(starts),), label, dtype=torch.long)
    path = [starts]
    for _ in range(updates):
        z.requires_grad_(True)
        (grad,) = torch.autograd.grad(fn(z, target, reduction="sum"), z)
        z = (z - lr * grad).detach()
        path.append(torch.softmax(z, dim=1).numpy())
    return np.stack(path)


def simplex_flow_figure(losses: Mapping[str, str], *, title: str, label: int = 0, steps: int = 7,
                        updates: int = 10, lr: float = 0.5, active: int = 0) -> go.Figure:
    """Where gradient descent takes a 3-class prediction, with a slider over ``losses`` (name -> spec).

    From every point of :func:`noisyloss.analysis.simplex_points` (grey) the logits of one sample with
    label ``label`` take ``updates`` gradient steps of size ``lr`` through the real loss; the line is the
    route of its prediction over the simplex, the marker where it ends.  For a loss of :math:`p_y` alone
    the routes are the same curves for every loss (the gradient is :math:`w(p_y)(p - e_y)`) and the
    losses differ in how far along them the steps get; a loss that depends on the other probabilities
    (NCE) takes other routes."""
    label = check_int("label", label, 0)
    if label > 2:
        raise ValueError(f"label must be 0, 1 or 2 on the 3-class simplex, got {label}")
    starts = simplex_points(steps)
    corners = [f"p = e{k}" + (" (label)" if k == label else "") for k in range(3)]
    fixed = [go.Scatter(x=_round(_CORNERS[[0, 1, 2, 0], 0], 4), y=_round(_CORNERS[[0, 1, 2, 0], 1], 4),
                        mode="lines+text", line=dict(color="#444444", width=1), showlegend=False, hoverinfo="skip",
                        text=corners + [""], textposition=["bottom left", "bottom right", "top center", "bottom left"]),
             go.Scatter(x=_round((starts @ _CORNERS)[:, 0], 4), y=_round((starts @ _CORNERS)[:, 1], 4),
                        mode="markers", marker=dict(size=5, color="#aaaaaa"), name="start", hoverinfo="skip")]

    def routes(name: str) -> List[go.Scatter]:
        paths = _simplex_paths(losses[name], starts, label, updates, lr) @ _CORNERS  # (updates + 1, n, 2)
        # one trace draws all routes, one after the other with a gap (None) between them
        xy = np.concatenate([paths, np.full((1, len(starts), 2), np.nan)]).transpose(1, 0, 2).reshape(-1, 2)
        x, y = ([None if np.isnan(v) else v for v in _round(xy[:, k], 4)] for k in (0, 1))
        colour = loss_colour(losses[name])
        return [go.Scatter(x=x, y=y, mode="lines", line=dict(color=colour, width=1.5), name=f"{name}: route",
                           legendgroup=name, hoverinfo="skip"),
                go.Scatter(x=_round(paths[-1, :, 0], 4), y=_round(paths[-1, :, 1], 4), mode="markers",
                           legendgroup=name, marker=dict(color=colour, size=8),
                           name=f"{name}: after {updates} step{'s' * (updates != 1)}")]

    return slider_figure(list(losses), routes, param_name="loss", title=title, active=active, fixed_traces=fixed,
                         layout=dict(xaxis=dict(visible=False, range=[-0.12, 1.12]), height=620,
                                     yaxis=dict(visible=False, range=[-0.1, 0.95], scaleanchor="x")))


#: the region colours of classes 0, 1, 2: light where the class is the one of the slider's first step,
#: saturated where it has changed since
_REGION_COLOURS = ("#c6dbef", "#fcbba1", "#c7e9c0", "#6baed6", "#fb6a4a", "#74c476")


def decision_regions_figure(xs: Sequence[float], ys: Sequence[float], regions: Mapping[object, Sequence[np.ndarray]],
                            panels: Sequence[str], points: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]], *,
                            cols: int, title: str, param_name: str = "epoch",
                            active: Optional[int] = None) -> go.Figure:
    """Predicted class over a grid for several 3-class models, in a grid of panels, with a slider over
    ``regions``' keys (e.g. epochs); it fits one laptop screen with its slider.

    ``regions[step][j]`` is the ``(len(ys), len(xs))`` array of predicted classes of panel ``j``
    (titled ``panels[j]``), drawn light where it is the class of the first step and saturated where
    the prediction has changed since, so that the slider shows where the boundary moved;
    ``points[j] = (x (n, 2), given labels (n,), corrupted (n,) bool)`` are the training points drawn
    on panel ``j`` at every step, coloured by their given label, the corrupted ones ringed in black."""
    if len(points) != len(panels):
        raise ValueError(f"points must have one entry per panel ({len(panels)}), got {len(points)}")
    rows = -(-len(panels) // cols)
    first = [np.asarray(r).astype(int) for r in next(iter(regions.values()))]

    scale = [[k / 6, c] for i, c in enumerate(_REGION_COLOURS) for k in (i, i + 1)]
    fixed = []
    for j, (x, given, corrupted) in enumerate(points):
        corrupted = np.asarray(corrupted, dtype=bool)
        for bad in (False, True):
            sel = corrupted == bad
            fixed.append(go.Scatter(
                x=_round(x[sel, 0], 3), y=_round(x[sel, 1], 3), mode="markers", showlegend=j == 0,
                name="wrong label (ringed)" if bad else "label as given", legendgroup=str(bad),
                marker=dict(size=7 if bad else 5, color=[PALETTE[int(k)] for k in given[sel]],
                            line=dict(color="black", width=2 if bad else 0)), **_axes(j)))

    def make(step) -> list:
        return [go.Heatmap(x=_round(xs, 3), y=_round(ys, 3), z=(r + 3 * (r != f)).tolist(), zmin=-0.5, zmax=5.5,
                           colorscale=scale, showscale=False, hoverinfo="skip", **_axes(j))
                for j, (r, f) in enumerate(zip((np.asarray(r).astype(int) for r in regions[step]), first))]

    fig = slider_figure(list(regions), make, param_name=param_name, title=title, active=active, fixed_traces=fixed,
                        subplots=(rows, cols))
    fig.update_layout(height=fig.layout.margin.t + fig.layout.margin.b + 190 * rows)
    for j, name in enumerate(panels):
        ref = f"{j + 1 if j else ''}"
        fig.add_annotation(text=name, x=0.5, y=1.0, xref=f"x{ref} domain", yref=f"y{ref} domain", showarrow=False,
                           yanchor="bottom", font=dict(size=12))
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig


def py_histogram_figure(snapshots: Mapping[object, np.ndarray], corrupted: np.ndarray,
                        weight: Optional[Tuple[np.ndarray, np.ndarray]] = None, *, title: str, bins: int = 20,
                        active: Optional[int] = None) -> go.Figure:
    """Histograms of :math:`p_y` (the probability of the *given* label) of the clean and of the corrupted
    training samples, with a slider over ``snapshots`` (step -> ``p_y`` of every training sample), and
    the loss's gradient weight ``weight = (p_y grid, w)`` (:func:`noisyloss.analysis.gradient_weight`)
    drawn over them, divided by its maximum so that it shares the axis with the fractions; ``None`` draws
    no curve (a loss whose pull is not a function of :math:`p_y` alone, e.g. ELR's)."""
    corrupted = np.asarray(corrupted, dtype=bool)
    sizes = {step: len(p) for step, p in snapshots.items() if len(p) != len(corrupted)}
    if sizes:
        raise ValueError(f"snapshots must hold p_y of the {len(corrupted)} samples of corrupted, got {sizes}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    curves = []
    if weight is not None:
        grid, w = (np.asarray(a, dtype=np.float64) for a in weight)
        top = float(np.abs(w).max()) or 1.0
        curves.append(go.Scatter(x=_round(grid, 4), y=_round(w / top, 4), mode="lines",
                                 line=dict(color="black", width=2), name=f"gradient weight w(p_y) ÷ {top:.3g}"))

    def make(step) -> list:
        p = np.asarray(snapshots[step], dtype=np.float64)
        return [go.Bar(x=_round(centres, 4), y=_round(np.histogram(p[sel], bins=edges)[0] / max(int(sel.sum()), 1), 4),
                       name=group, marker_color=colour, opacity=0.6, width=1.0 / bins)
                for group, sel, colour in (("clean samples", ~corrupted, PALETTE[0]),
                                           ("corrupted samples", corrupted, PALETTE[1]))]

    return slider_figure(list(snapshots), make, param_name="epoch", title=title, active=active, fixed_traces=curves,
                         xaxis_title="p_y, probability of the given label", yaxis_title="fraction of the group",
                         layout=dict(barmode="overlay", yaxis_range=[0, 1.02], xaxis_range=[0, 1]))
