"""Sphinx extension for the book's pages: which scripts they load, and when.

* plotly.js is the official *cartesian* partial bundle (npm package ``plotly.js-cartesian-dist-min``,
  vendored in ``book/_ext/plotly/`` with its MIT licence): the trace types the book draws (scatter,
  bar, heatmap, histogram, contour, scatterternary and the other 2-D ones) in 0.5 MB gzipped instead
  of the full bundle's 1.5 MB.  It must be the plotly.js the installed plotly writes figures for: the
  build stops otherwise and names the bundle to fetch.  The site serves it from ``_static`` (figures
  render offline) and loads it ``async`` with high fetch priority, so it never holds up the page;
  each figure's inline script hands its drawing to ``noisylossPlot``, which draws at once when
  plotly.js is there and otherwise as soon as it has loaded.  Pages without figures do not load it.
* MathJax 3 is served from ``_static/mathjax`` (``mathjax_path: mathjax/tex-mml-chtml.js`` in
  ``_config.yml``), copied from the ``sphinx-mathjax-offline`` package: formulas typeset offline too.
  Only the combined component the site loads is copied, with the folders it loads on demand
  (fonts, TeX extensions, accessibility): about 9 MB instead of the package's 24 MB.  On a page with
  figures MathJax is loaded after the page's load event, so neither its bytes nor its typesetting
  come before the first figure.
* ``noisyloss.css``: nothing on a page scrolls sideways, on a 390 px phone either: code cells and
  outputs wrap to the column, wide tables and fixed-width figures scroll in their own box, inline code
  and API signatures break; plotly's toolbar sits in a band below each figure, where it covers no
  title or legend (``tests/browser/check_site.py`` checks all of it in a browser).
* Theme assets the book does not use are not loaded: FontAwesome's 1.5 MB script (the theme's CSS
  already draws every icon from the FontAwesome webfonts; the script is only needed for custom icons,
  and the book has none) and sphinx-thebe's scripts and stylesheet (the book has no live-code button;
  sphinx-thebe 0.3.1 also registers its inline config script twice under Jupyter Book 1.0.4, and the
  second copy throws ``SyntaxError: Identifier 'THEBE_JS_URL' has already been declared``).
"""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import plotly.offline

HERE = Path(__file__).parent
PLOTLY_JS = HERE / "plotly" / "plotly-cartesian.min.js"
PLOTLY_PACKAGE = "plotly.js-cartesian-dist-min"
CSS = HERE / "noisyloss.css"  # nothing scrolls sideways; the toolbar below each figure
STATIC = "_static/"  # Sphinx names a page's scripts by their path in the site, e.g. _static/x.js
_MATHJAX_SPEC = importlib.util.find_spec("sphinx-mathjax-offline")  # the package's name has hyphens
MATHJAX = (Path(next(iter(_MATHJAX_SPEC.submodule_search_locations))) / "static" / "mathjax"
           if _MATHJAX_SPEC else None)

# Defined in the head, before any figure: run ``draw`` now if plotly.js is loaded, else queue it for
# the plotly.js script's onload, which draws the queued figures one per frame (the first one is on
# screen before the others are drawn).
PLOT_QUEUE_JS = ("window.noisylossPlot = function (draw) { if (window.Plotly) { draw(); } "
                 "else { (window.noisylossPlots = window.noisylossPlots || []).push(draw); } };")
PLOT_QUEUE_RUN = ("(function next(queue) { if (queue.length) { queue.shift()(); requestAnimationFrame("
                  "function () { setTimeout(function () { next(queue); }); }); } })(window.noisylossPlots || []);")
# The script plotly.io.to_html writes after each figure's <div> (plotly escapes "<" inside its JSON).
_FIGURE_SCRIPT = re.compile(r"<script>(\s*window\.PLOTLYENV=.*?)</script>", re.S)
_FONTAWESOME_SCRIPT = re.compile(r'\s*<script defer src="[^"]*_static/scripts/fontawesome\.js[^"]*"></script>')


def bundle_version(path: Path) -> str:
    """The plotly.js version a bundle's licence header names (``* plotly.js (cartesian - minified) v3.7.0``)."""
    with open(path, encoding="utf-8") as f:
        head = f.read(300)
    found = re.search(r"plotly\.js \(cartesian - minified\) v(\d+\.\d+\.\d+)", head)
    if not found:
        raise RuntimeError(f"{path} does not start with the header of {PLOTLY_PACKAGE}")
    return found.group(1)


def check_plotly_version() -> None:
    """Raise unless the vendored bundle is the plotly.js the installed plotly package writes for."""
    want, have = plotly.offline.get_plotlyjs_version(), bundle_version(PLOTLY_JS)
    if want != have:
        raise RuntimeError(
            f"{PLOTLY_JS} is plotly.js {have}, but the installed plotly {plotly.__version__} writes figures "
            f"for plotly.js {want}. Replace it (and LICENSE beside it) with the files of the npm package "
            f"{PLOTLY_PACKAGE}@{want} (`npm pack {PLOTLY_PACKAGE}@{want}`), or install the plotly of "
            "requirements.txt.")


def without_fontawesome(css_block: str) -> str:
    """Jinja filter for the theme's head block (``templates/layout.html``): drop FontAwesome's script."""
    kept, n = _FONTAWESOME_SCRIPT.subn("", css_block)
    if n != 1:
        raise RuntimeError(f"expected one FontAwesome <script> in the theme's head, found {n}: "
                           "has pydata-sphinx-theme changed? (book/_ext/site_assets.py)")
    return type(css_block)(kept)  # Markup stays Markup


def _register_filter(app) -> None:
    if app.builder.format == "html":
        app.builder.templates.environment.filters["without_fontawesome"] = without_fontawesome


def _copy_assets(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PLOTLY_JS, static / PLOTLY_JS.name)
        shutil.copyfile(CSS, static / CSS.name)
        _copy_mathjax(app.config.mathjax_path, static / "mathjax")


def _copy_mathjax(mathjax_path: str, target: Path) -> None:
    """Copy the combined MathJax component named by ``mathjax_path`` and the folders MathJax loads
    from beside it; other combined components (``tex-svg.js``, ...) are left out."""
    entry = Path(mathjax_path).name
    shutil.copytree(MATHJAX, target, dirs_exist_ok=True,
                    ignore=lambda folder, names: [n for n in names if Path(folder) == MATHJAX
                                                  and n.endswith(".js") and n != entry])


def _configure(app, config) -> None:
    config.templates_path.append(str(HERE / "templates"))
    path = config.mathjax_path
    if not path.startswith("mathjax/") or not (MATHJAX / path[len("mathjax/"):]).is_file():
        raise RuntimeError(f"mathjax_path must be 'mathjax/<file>' with a file of {MATHJAX}, got {path!r}")


def _is_thebe(asset) -> bool:
    name = str(asset.filename or "")
    return "sphinx-thebe" in name or "THEBE_JS_URL" in asset.attributes.get("body", "")


def _page_assets(app, pagename, templatename, context, doctree) -> None:
    """Per page: drop sphinx-thebe's assets. On a page with figures, each figure's inline script waits
    for plotly.js through noisylossPlot, and MathJax is loaded once the page has loaded (plotly.js
    included), so typesetting does not hold up the first figure; a page without figures does not
    load plotly.js."""
    context["css_files"] = [asset for asset in context.get("css_files", []) if not _is_thebe(asset)]
    scripts = [asset for asset in context.get("script_files", []) if not _is_thebe(asset)]
    body, figures = _FIGURE_SCRIPT.subn(r"<script>noisylossPlot(function () {\1});</script>", context.get("body", ""))
    if figures:
        mathjax = [asset for asset in scripts if asset.filename == STATIC + app.config.mathjax_path]
        if mathjax:
            scripts = [asset for asset in scripts if asset not in mathjax]
            url = context["pathto"](mathjax[0].filename, 1)
            body += (f"<script>window.addEventListener('load', function () {{ var s = document.createElement"
                     f"('script'); s.src = {json.dumps(url)}; document.head.appendChild(s); }});</script>")
        context["body"] = body
    else:
        scripts = [asset for asset in scripts
                   if asset.filename != STATIC + PLOTLY_JS.name and asset.attributes.get("body") != PLOT_QUEUE_JS]
    context["script_files"] = scripts


def setup(app):
    check_plotly_version()
    if MATHJAX is None or not MATHJAX.is_dir():
        raise RuntimeError("MathJax files not found: pip install sphinx-mathjax-offline (requirements.txt)")
    app.add_js_file(None, body=PLOT_QUEUE_JS, priority=99)
    # fetchpriority: the browser fetches plotly.js ahead of the page's other async and deferred scripts
    app.add_js_file(PLOTLY_JS.name, priority=100,
                    **{"async": "async", "fetchpriority": "high", "onload": PLOT_QUEUE_RUN})
    app.add_css_file(CSS.name)
    app.connect("config-inited", _configure)
    app.connect("builder-inited", _register_filter)
    app.connect("build-finished", _copy_assets)
    app.connect("html-page-context", _page_assets, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
