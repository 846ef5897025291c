"""What only the book needs: the setup cell of every chapter, the plotly renderer of the pages, the
GPU records shipped with the package (``noisyloss/results/*.jsonl``) with a line naming where they
came from, and the page furniture: the admonition stating what a page ran on (:func:`page_note`),
results as HTML tables (:func:`table`), and the collapsed boxes of numerical checks (:func:`checks`)
and provenance (:func:`provenance`).

Importing :mod:`noisyloss.viz` changes no global plotly state; :func:`setup` (or
:func:`use_renderer`) selects the book's renderer explicitly.
"""
from __future__ import annotations

import html
import math
import numbers
import sys
from importlib import resources
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import plotly.io as pio
import torch
from IPython.display import HTML
from plotly.io.base_renderers import MimetypeRenderer

from .experiments import load_records
from .experiments.tables import html_table
from .runtime import default_device, mode_line, quick_mode
from .runtime import setup as _runtime_setup

__all__ = ["BookRenderer", "use_renderer", "setup", "results", "shipped_results", "provenance_line", "page_note",
           "provenance", "checks", "table"]

Record = Dict[str, Any]


#: the package folder that holds the GPU records the chapters read
_RESULTS = resources.files("noisyloss") / "results"


class BookRenderer(MimetypeRenderer):
    """Plotly renderer for the book and for JupyterLab: the plotly JSON mimetype (rendered natively by
    JupyterLab/VS Code) plus an HTML ``<div>`` that draws the figure with a page-level ``Plotly``.

    The built site loads one local ``plotly.min.js`` per page (``book/_ext/site_assets.py``), so
    pages work offline and no output carries a 4 MB copy of plotly.js.  On Colab the ``colab``
    renderer is used instead (see :func:`use_renderer`).
    """

    def to_mimebundle(self, fig_dict):
        html = pio.to_html(fig_dict, full_html=False, include_plotlyjs=False, include_mathjax=False,
                           config={"responsive": True, "displaylogo": False})
        return {"application/vnd.plotly.v1+json": fig_dict, "text/html": html}


def use_renderer() -> str:
    """Make plotly figures display with :class:`BookRenderer` (``colab`` on Colab); returns its name."""
    pio.renderers["noisyloss"] = BookRenderer()
    name = "colab" if "google.colab" in sys.modules else "noisyloss"
    pio.renderers.default = name
    return name


def setup(seed: int = 0, verbose: bool = True) -> Tuple[torch.device, bool]:
    """The first cell of every chapter: :func:`noisyloss.runtime.setup` (seed, device, threads, mode
    line) and the book's plotly renderer.  Returns ``(device, quick)``."""
    device, quick = _runtime_setup(seed=seed, verbose=verbose)
    use_renderer()
    return device, quick


def shipped_results() -> List[str]:
    """Names of the records files shipped with this installation (``noisyloss/results``)."""
    return sorted(p.name for p in _RESULTS.iterdir() if p.name.endswith(".jsonl")) if _RESULTS.is_dir() else []


def results(name: str = "digits_gpu.jsonl") -> List[Dict[str, Any]]:
    """The records of ``noisyloss/results/NAME``, written by the project's runner on a GPU and shipped
    with the package (wheel and checkout alike; nothing is downloaded).

    When the file is not in this installation, prints one line saying so (what the page shows in
    place of its table) and returns ``[]``.
    """
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"name must be the file name of a records file in noisyloss/results, got {name!r}")
    path = _RESULTS / name
    if not path.is_file():
        print(f"The GPU records {name!r} are missing from this installation of noisyloss (looked for {path}; "
              f"shipped: {', '.join(shipped_results()) or 'none'}), so this table is not shown.")
        return []
    with resources.as_file(path) as local:
        return load_records(local)


def provenance_line(records: Sequence[Record]) -> str:
    """One line naming where and when records were produced (devices, torch, commits, dates)."""
    if not records:
        return "no records"

    def uniq(key: str) -> str:
        return ", ".join(sorted({str(r.get(key)) for r in records}))

    commits = ", ".join(sorted({str(r.get("commit"))[:10] for r in records}))
    dates = sorted(str(r.get("date")) for r in records)
    return (f"{len(records)} records written by noisyloss's runner on {uniq('device')} (torch {uniq('torch')}), "
            f"commit {commits}, {dates[0][:10]} to {dates[-1][:10]}")


def page_note(device: Optional[torch.device] = None, quick: Optional[bool] = None, **facts: str) -> HTML:
    """The one visible admonition of an experimental page: its ``facts`` (``data=...``, ``model=...``,
    each shown as "Data: ..."), then the run's device and mode (:func:`noisyloss.runtime.mode_line`;
    ``device`` and ``quick`` default to what :func:`setup` chose).  The page's setup cell is removed
    from the page, so this is where a reader sees which run made the numbers."""
    device = default_device() if device is None else torch.device(device)
    quick = quick_mode(device) if quick is None else quick
    lines = [f"<b>{html.escape(name.replace('_', ' ').capitalize())}:</b> {html.escape(str(value))}"
             for name, value in facts.items()]
    body = "<br>".join([*lines, html.escape(mode_line(device, quick))])
    return HTML(f'<div class="admonition note"><p class="admonition-title">What this page runs</p><p>{body}</p></div>')


def _collapsed(summary: str, body: str) -> HTML:
    """A ``<details>`` box: ``summary`` is its one visible line, ``body`` (HTML) opens on a click."""
    return HTML(f'<details class="noisyloss-details"><summary>{html.escape(summary)}</summary>{body}</details>')


def provenance(*items: Union[str, Sequence[Record]]) -> HTML:
    """The page's one collapsed provenance line: each item, a sentence or records (shown as
    :func:`provenance_line`), becomes a paragraph of the box.  Temporary paths, commits, thread
    counts and run times go here and nowhere else on a page."""
    if not items:
        raise ValueError("provenance needs at least one item (a sentence or records), got none")
    texts = [item if isinstance(item, str) else provenance_line(item) for item in items]
    return _collapsed("Provenance: where these numbers come from",
                      "".join(f"<p>{html.escape(t)}</p>" for t in texts))


def _cell(value: Any, digits: int) -> str:
    """A table cell as text: floats with ``digits`` decimals (tiny ones in scientific notation),
    ``None`` and NaN (pandas' missing value) as a dash, everything else as ``str`` gives it."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)):
        value = float(value)
        if math.isnan(value):
            return "–"
        return f"{value:.1e}" if value != 0 and abs(value) < 10 ** -digits else f"{value:.{digits}f}"
    return "–" if value is None else str(value)


def _reads_as_number(value: Any) -> bool:
    """Whether a cell is a number, or text that starts with one (the alignment of :func:`table`)."""
    if isinstance(value, numbers.Number):
        return True
    words = str(value).replace("−", "-").split()
    if not words:
        return False
    try:
        float(words[0].rstrip("%"))
    except ValueError:
        return False
    return True


def checks(values: Mapping[str, Any], digits: int = 3) -> HTML:
    """One collapsed "checks" box per page: a two-column table of named numerical self-checks (e.g.
    ``{"max |Huber(δ=4) − MSE/2|": 2e-16}``), closed until the reader opens it."""
    if not values:
        raise ValueError("checks needs at least one named value, got none")
    rows = [["check", "value"], *([name, _cell(v, digits)] for name, v in values.items())]
    return _collapsed(f"Checks ({len(values)})", html_table(rows, left=1))


def table(rows: Any, digits: int = 3) -> HTML:
    """A results table for the page: ``rows`` is a sequence of mappings (one per row, the keys of the
    first row are the columns) or a pandas DataFrame.  Floats get ``digits`` decimals; the columns
    are right-aligned from the first one whose first value is a number or reads as one (``"1e-06"``,
    ``"0.25 ± 0.03"``, ``"9.0%"``), so the label columns come first.  Where seeds are averaged, give
    the row its ``n``."""
    records = rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)
    if not records:
        raise ValueError("table needs at least one row, got none")
    columns = list(records[0])
    numeric = [_reads_as_number(records[0][c]) for c in columns]
    left = numeric.index(True) if True in numeric else len(columns)
    body = [[_cell(r.get(c), digits) for c in columns] for r in records]
    return HTML(html_table([[str(c) for c in columns], *body], left=left))
