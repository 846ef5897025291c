"""The book's Sphinx extension (book/_ext/site_assets.py): the vendored plotly.js bundle is the
version the installed plotly writes figures for, and every figure script plotly writes is handed to
``noisylossPlot`` (which waits for the async plotly.js) instead of calling ``Plotly`` at once."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import SimpleNamespace

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


MATHJAX_PATH = "mathjax/tex-mml-chtml.js"
APP = SimpleNamespace(config=SimpleNamespace(mathjax_path=MATHJAX_PATH))


def _render(body: str) -> dict:
    """The page context after the extension's html-page-context handler, for a page with MathJax."""
    def script(filename, **attributes):
        return SimpleNamespace(filename=filename, attributes=attributes)

    context = {"body": body, "css_files": [], "pathto": lambda uri, resource: "../" + uri,
               "script_files": [script(None, body=site_assets.PLOT_QUEUE_JS),  # as Sphinx names them
                                script("_static/" + site_assets.PLOTLY_JS.name, **{"async": "async"}),
                                script("_static/" + MATHJAX_PATH, defer="defer")]}
    site_assets._page_assets(APP, "page", "page.html", context, None)
    return context


def test_every_figure_script_waits_for_plotly_and_mathjax_waits_for_the_page():
    context = _render(_page_body(go.Figure(go.Scatter(y=[1, 2])), go.Figure(go.Heatmap(z=[[1, 2], [3, 4]]))))
    scripts = re.findall(r"<script>(.*?)</script>", context["body"], re.S)
    assert len(scripts) == 3
    for script in scripts[:2]:
        assert script.startswith("noisylossPlot(function () {") and script.endswith("});")
        assert "Plotly.newPlot(" in script
    assert scripts[2].startswith("window.addEventListener('load'") and '"../_static/mathjax/' in scripts[2]
    assert [s.filename for s in context["script_files"]] == [None, "_static/" + site_assets.PLOTLY_JS.name]


def test_a_page_without_figures_loads_no_plotly():
    context = _render("<p>text, $x$</p>")
    assert context["body"] == "<p>text, $x$</p>"
    assert [s.filename for s in context["script_files"]] == ["_static/" + MATHJAX_PATH]


def test_fontawesome_script_is_dropped_from_the_theme_head():
    head = ('<link href="../_static/styles/theme.css" rel="stylesheet" />\n'
            '  <script defer src="../_static/scripts/fontawesome.js?digest=55c2"></script>\n'
            '<link rel="preload" as="script" href="../_static/scripts/bootstrap.js" />')
    kept = site_assets.without_fontawesome(head)
    assert "fontawesome" not in kept and "theme.css" in kept and "bootstrap.js" in kept
    with pytest.raises(RuntimeError, match="FontAwesome"):
        site_assets.without_fontawesome(kept)


def _css_rules() -> dict:
    """The extension's stylesheet as {selector: {property: value}} (comments dropped)."""
    text = re.sub(r"/\*.*?\*/", "", site_assets.CSS.read_text(), flags=re.S)
    rules: dict = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", text):
        declarations = dict(tuple(part.strip() for part in d.split(":", 1)) for d in body.split(";") if d.strip())
        for selector in selectors.split(","):
            rules.setdefault(" ".join(selector.split()), {}).update(declarations)
    return rules


def test_code_cells_wrap_and_wide_outputs_scroll_in_their_own_box():
    rules = _css_rules()
    assert rules["div.cell_input pre"]["white-space"] == "pre-wrap"
    assert rules["div.cell_input pre"]["overflow-wrap"] == "anywhere"
    for box in ("div.cell_output table", "article.bd-article .output.text_html"):
        assert rules[box]["max-width"] == "100%" and rules[box]["overflow-x"] == "auto"


def test_plotly_toolbar_sits_below_the_figure_in_a_band_kept_free_for_it():
    rules = _css_rules()
    # plotly sets the container's top inline (0px), hence !important
    assert rules["article.bd-article .js-plotly-plot .plotly .modebar-container"]["top"] == "100% !important"
    assert rules["article.bd-article .output.text_html:has(.plotly-graph-div)"]["padding-bottom"].endswith("px")
