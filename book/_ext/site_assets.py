"""Sphinx extension for the book's pages.

* Serves the installed plotly's own ``plotly.min.js`` from the site's ``_static`` and loads it on every
  page, so plotly figures render offline, with no CDN and one copy per site.
* Serves MathJax 3 from ``_static/mathjax`` (``mathjax_path: mathjax/tex-mml-chtml.js`` in
  ``_config.yml``), copied from the ``sphinx-mathjax-offline`` package: formulas typeset offline too.
  Only the combined component the site loads is copied, with the folders it loads on demand
  (fonts, TeX extensions, accessibility): about 9 MB instead of the package's 24 MB.
* Drops duplicate inline scripts: sphinx-thebe 0.3.1 registers its inline config script (``const
  THEBE_JS_URL = ...``) twice under Jupyter Book 1.0.4, and the second copy throws
  ``SyntaxError: Identifier 'THEBE_JS_URL' has already been declared`` in every page.
"""
import importlib.util
import shutil
from pathlib import Path

import plotly

SOURCE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
_MATHJAX_SPEC = importlib.util.find_spec("sphinx-mathjax-offline")  # the package's name has hyphens
MATHJAX = (Path(next(iter(_MATHJAX_SPEC.submodule_search_locations))) / "static" / "mathjax"
           if _MATHJAX_SPEC else None)


def _copy_assets(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SOURCE, static / "plotly.min.js")
        _copy_mathjax(app.config.mathjax_path, static / "mathjax")


def _copy_mathjax(mathjax_path: str, target: Path) -> None:
    """Copy the combined MathJax component named by ``mathjax_path`` and the folders MathJax loads
    from beside it; other combined components (``tex-svg.js``, ...) are left out."""
    entry = Path(mathjax_path).name
    shutil.copytree(MATHJAX, target, dirs_exist_ok=True,
                    ignore=lambda folder, names: [n for n in names if Path(folder) == MATHJAX
                                                  and n.endswith(".js") and n != entry])


def _check_mathjax_path(app, config) -> None:
    path = config.mathjax_path
    if not path.startswith("mathjax/") or not (MATHJAX / path[len("mathjax/"):]).is_file():
        raise RuntimeError(f"mathjax_path must be 'mathjax/<file>' with a file of {MATHJAX}, got {path!r}")


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        # inline scripts carry filename None or "" depending on who added them
        key = (str(getattr(js, "filename", js) or ""), repr(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app):
    if not SOURCE.is_file():
        raise RuntimeError(f"plotly.min.js not found at {SOURCE}; is plotly installed?")
    if MATHJAX is None or not MATHJAX.is_dir():
        raise RuntimeError("MathJax files not found: pip install sphinx-mathjax-offline (requirements.txt)")
    app.add_js_file("plotly.min.js", priority=100)
    app.connect("config-inited", _check_mathjax_path)
    app.connect("build-finished", _copy_assets)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
