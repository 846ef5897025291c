"""The book's Sphinx extension (book/_ext/site_assets.py): the vendored plotly.js bundle is the
version the installed plotly writes figures for, and every figure script plotly writes is handed to
``noisylossPlot`` (which waits for the async plotly.js) instead of calling ``Plotly`` at once."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("site_assets", ROOT / "book" / "_ext" / "site_assets.py")
site_assets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(site_assets)


def test_bundle_is_the_plotlyjs_the_installed_plotly_writes_for():
    assert site_assets.bundle_version(site_assets.PLOTLY_JS) == plotly.offline.get_plotlyjs_version()
    site_assets.check_plotly_version()


def test_a_bundle_of_another_version_stops_the_build(tmp_path, monkeypatch):
    other = tmp_path / "plotly-cartesian.min.js"
    other.write_text("/**\n* plotly.js (cartesian - minified) v0.0.1\n*/\n")
    monkeypatch.setattr(site_assets, "PLOTLY_JS", other)
    with pytest.raises(RuntimeError, match=r"plotly\.js 0\.0\.1.*npm pack plotly\.js-cartesian-dist-min@"):
        site_assets.check_plotly_version()


def test_bundle_licence_is_beside_it():
    licence = (site_assets.PLOTLY_JS.parent / "LICENSE").read_text()
    assert "MIT" in licence or "Permission is hereby granted" in licence


def _page_body(*figures: go.Figure) -> str:
    return "<p>text</p>" + "".join(pio.to_html(f, full_html=False, include_plotlyjs=False) for f in figures)


def test_every_figure_script_waits_for_plotly():
    body = _page_body(go.Figure(go.Scatter(y=[1, 2])), go.Figure(go.Heatmap(z=[[1, 2], [3, 4]])))
    context = {"body": body, "script_files": [], "css_files": []}
    site_assets._page_assets(None, "page", "page.html", context, None)
    scripts = re.findall(r"<script>(.*?)</script>", context["body"], re.S)
    assert len(scripts) == 2
    for script in scripts:
        assert script.startswith("noisylossPlot(function () {") and script.endswith("});")
        assert "Plotly.newPlot(" in script


def test_fontawesome_script_is_dropped_from_the_theme_head():
    head = ('<link href="../_static/styles/theme.css" rel="stylesheet" />\n'
            '  <script defer src="../_static/scripts/fontawesome.js?digest=55c2"></script>\n'
            '<link rel="preload" as="script" href="../_static/scripts/bootstrap.js" />')
    kept = site_assets.without_fontawesome(head)
    assert "fontawesome" not in kept and "theme.css" in kept and "bootstrap.js" in kept
    with pytest.raises(RuntimeError, match="FontAwesome"):
        site_assets.without_fontawesome(kept)
