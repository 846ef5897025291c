"""What only the book needs: the setup cell of every chapter, the plotly renderer of the pages, and
the GPU records shipped with the package (``noisyloss/results/*.jsonl``), with a line naming where
they came from.

Importing :mod:`noisyloss.viz` changes no global plotly state; :func:`setup` (or
:func:`use_renderer`) selects the book's renderer explicitly.
"""
from __future__ import annotations

import sys
from importlib import resources
from typing import Any, Dict, List, Sequence, Tuple

import plotly.io as pio
import torch
from plotly.io.base_renderers import MimetypeRenderer

from .experiments import load_records
from .runtime import setup as _runtime_setup

__all__ = ["BookRenderer", "use_renderer", "setup", "results", "shipped_results", "provenance_line"]


def _results_folder():
    """The package folder that holds the GPU records the chapters read (``noisyloss/results``)."""
    return resources.files("noisyloss") / "results"


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
    folder = _results_folder()
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".jsonl")) if folder.is_dir() else []


def results(name: str = "digits_gpu.jsonl") -> List[Dict[str, Any]]:
    """The records of ``noisyloss/results/NAME``, written by the project's runner on a GPU and shipped
    with the package (wheel and checkout alike; nothing is downloaded).

    When the file is not in this installation, prints one line saying so (what the page shows in
    place of its table) and returns ``[]``.
    """
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"name must be the file name of a records file in noisyloss/results, got {name!r}")
    path = _results_folder() / name
    if not path.is_file():
        print(f"The GPU records {name!r} are missing from this installation of noisyloss (looked for {path}; "
              f"shipped: {', '.join(shipped_results()) or 'none'}), so this table is not shown.")
        return []
    with resources.as_file(path) as local:
        return load_records(local)


def provenance_line(records: Sequence[Dict[str, Any]]) -> str:
    """One line naming where and when records were produced (devices, torch, commits, dates)."""
    if not records:
        return "no records"

    def uniq(key: str) -> str:
        return ", ".join(sorted({str(r.get(key)) for r in records}))

    commits = ", ".join(sorted({str(r.get("commit"))[:10] for r in records}))
    dates = sorted(str(r.get("date")) for r in records)
    return (f"{len(records)} records written by noisyloss's runner on {uniq('device')} (torch {uniq('torch')}), "
            f"commit {commits}, {dates[0][:10]} to {dates[-1][:10]}")
