"""Sphinx extension: serve the installed plotly's own ``plotly.min.js`` from the site's ``_static``
and load it on every page, so plotly figures render offline, with no CDN and one copy per site."""
import shutil
from pathlib import Path

import plotly

SOURCE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _copy(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SOURCE, static / "plotly.min.js")


def setup(app):
    if not SOURCE.is_file():
        raise RuntimeError(f"plotly.min.js not found at {SOURCE}; is plotly installed?")
    app.add_js_file("plotly.min.js", priority=100)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
