"""Sphinx extension for the book's pages.

* Serves the installed plotly's own ``plotly.min.js`` from the site's ``_static`` and loads it on every
  page, so plotly figures render offline, with no CDN and one copy per site.
* Drops duplicate inline scripts: sphinx-thebe 0.3.1 registers its inline config script (``const
  THEBE_JS_URL = ...``) twice under Jupyter Book 1.0.4, and the second copy throws
  ``SyntaxError: Identifier 'THEBE_JS_URL' has already been declared`` in every page.
"""
import shutil
from pathlib import Path

import plotly

SOURCE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _copy_plotly(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SOURCE, static / "plotly.min.js")


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
    app.add_js_file("plotly.min.js", priority=100)
    app.connect("build-finished", _copy_plotly)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
