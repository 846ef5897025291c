"""Real-browser check of the built book: every page loads in headless Chromium without JavaScript
errors, every formula is typeset by MathJax without a TeX error, every plotly figure is drawn, and
moving each slider (a mouse click on the slider rail, as a reader would) changes the plotted data.

    python tests/browser/check_site.py [_build/html]

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them).  The site is served
from 127.0.0.1, gzip-compressed as GitHub Pages serves it; the browser reaches nothing else.
Requests to outside hosts (e.g. MathJax's CDN, which CI cannot reach) are listed but are not errors;
any JavaScript exception or a failed request to the site itself is.  Ends with a line
``N passed, M failed``; exit status 1 on any failure.
"""
from __future__ import annotations

import functools
import gzip
import http.server
import io
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Tuple

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: pages whose slider figures must all be found (a page that lost one fails): page -> number of slider figures
MIN_SLIDERS = {"book/09_underfitting.html": 7}

# Collect uncaught errors from the first script on, before any page script runs.
ERROR_HOOK = """
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.type) + ' @ ' + (e.filename || '') + ':' + (e.lineno || '')));
window.addEventListener('unhandledrejection', e => window.__errors.push('unhandled rejection: ' + String(e.reason)));
"""

# Trace types the page's plotly.js bundle does not hold are listed as `missing` (the site serves a
# partial bundle, book/_ext/site_assets.py).
FIGURES_JS = """
const known = window.Plotly ? Object.keys(Plotly.PlotSchema.get().traces) : [];
return Array.from(document.querySelectorAll('.plotly-graph-div')).map((gd, i) => ({
  index: i,
  drawn: gd.classList.contains('js-plotly-plot') && gd.querySelector('svg.main-svg') !== null,
  traces: (gd.data || []).length,
  missing: (gd.data || []).map(t => t.type || 'scatter').filter(t => !known.includes(t)),
  sliders: ((gd.layout || {}).sliders || []).length,
}));
"""

STATE_JS = """
const gd = document.querySelectorAll('.plotly-graph-div')[arguments[0]];
const visible = (gd._fullData || []).filter(t => t.visible === true).map(t => t.index);
const paths = Array.from(gd.querySelectorAll(
    '.scatterlayer path.js-line, .scatterlayer path.point, .barlayer path, .heatmaplayer image'))
  .map(p => p.getAttribute('d') + (p.getAttribute('transform') || '') + (p.getAttribute('href') || '')).join('|');
return {active: gd.layout.sliders[0].active, steps: gd.layout.sliders[0].steps.length,
        visible: visible, paths: paths};
"""


# Resolves once MathJax has typeset the page: formulas (Sphinx marks them with class "math"), how many
# were typeset, and the TeX errors MathJax drew in their place.
MATH_JS = """
const done = arguments[arguments.length - 1];
const math = Array.from(document.querySelectorAll('.math'));
if (!math.length) { done({formulas: 0}); return; }
if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) { done({formulas: math.length, loaded: false}); return; }
MathJax.startup.promise.then(() => done({
  formulas: math.length, loaded: true,
  typeset: math.filter(m => m.querySelector('mjx-container')).length,
  errors: math.filter(m => m.querySelector('mjx-merror')).map(m => m.textContent.slice(0, 80)),
}), e => done({formulas: math.length, loaded: true, typeset: 0, errors: [String(e)]}));
"""


def check_math(driver, rel: str) -> Tuple[List[str], List[str], int]:
    """(passed, failed, number of formulas) for the MathJax typesetting of the open page."""
    # on a page with figures, MathJax is loaded after the page's load event (book/_ext/site_assets.py)
    wait_for(driver, "return !document.querySelector('.math') || !!(window.MathJax && MathJax.startup"
                     " && MathJax.startup.promise);", 15.0)
    math = driver.execute_async_script(MATH_JS)
    n = math["formulas"]
    if not n:
        return [], [], 0
    if not math["loaded"]:
        return [], [f"{rel}: {n} formulas but MathJax did not load"], n
    problems = [f"{rel}: TeX error in {err!r}" for err in math["errors"]]
    if math["typeset"] != n:
        problems.append(f"{rel}: MathJax typeset {math['typeset']} of {n} formulas")
    return ([] if problems else [f"{rel}: {n} formulas typeset"]), problems, n


class GzipHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site as GitHub Pages does: text files (HTML, CSS, JS, JSON, SVG) gzip-compressed
    when the browser accepts it, over keep-alive connections; fonts and images as they are."""

    protocol_version = "HTTP/1.1"
    COMPRESSED = (".html", ".css", ".js", ".json", ".svg", ".txt", ".xml")
    _cache: Dict[Path, bytes] = {}

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if (path.suffix not in self.COMPRESSED or not path.is_file()
                or "gzip" not in self.headers.get("Accept-Encoding", "")):
            return super().send_head()
        if path not in self._cache:
            self._cache[path] = gzip.compress(path.read_bytes(), compresslevel=6)
        body = self._cache[path]
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def log_message(self, *args) -> None:
        pass


def serve(root: Path) -> Tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``root`` on a free port of 127.0.0.1 in a daemon thread; (server, base URL)."""
    handler = functools.partial(GzipHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def browser(profile: str) -> webdriver.Chrome:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": ERROR_HOOK})
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    return driver


def wait_for(driver, script: str, timeout: float = 15.0, *args):
    end = time.time() + timeout
    while True:
        value = driver.execute_script(script, *args)
        if value or time.time() > end:
            return value
        time.sleep(0.2)


# Console errors that are not faults of the page: the browser's own favicon probe, and
# pydata-sphinx-theme reporting an empty stored colour mode in a fresh browser profile.
BENIGN = ("/favicon.ico - Failed to load resource", "Got invalid theme mode: . Resetting to auto.")


def console_problems(driver, base: str) -> Tuple[List[str], List[str]]:
    """(errors, external requests that failed offline) from the browser console."""
    errors, external = [], []
    for entry in driver.get_log("browser"):
        msg = entry["message"]
        if entry["level"] != "SEVERE" or any(b in msg for b in BENIGN):
            continue
        if ("Failed to load resource" in msg or "net::ERR_" in msg) and base not in msg:
            external.append(msg.split(" ")[0])
        else:
            errors.append(msg)
    return errors, external


def move_slider(driver, fig_index: int) -> Tuple[bool, str]:
    """Click the slider rail of figure ``fig_index`` at the far end from its active step."""
    before = driver.execute_script(STATE_JS, fig_index)
    gd = driver.find_elements(By.CSS_SELECTOR, ".plotly-graph-div")[fig_index]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", gd)
    rail = gd.find_element(By.CSS_SELECTOR, ".slider-container .slider-rail-touch-rect")
    width = rail.size["width"]
    go_left = before["active"] > (before["steps"] - 1) / 2
    offset = int(-width / 2 + 3) if go_left else int(width / 2 - 3)
    ActionChains(driver).move_to_element_with_offset(rail, offset, 0).click().perform()
    after = wait_for(driver, "const s = arguments[1]; const gd = document.querySelectorAll('.plotly-graph-div')"
                             "[arguments[0]]; return gd.layout.sliders[0].active !== s ? true : false;",
                     5.0, fig_index, before["active"])
    after = driver.execute_script(STATE_JS, fig_index)
    ok = (after["active"] != before["active"] and after["visible"] != before["visible"]
          and after["paths"] != before["paths"])
    return ok, (f"active {before['active']}->{after['active']}, visible traces {before['visible']}->"
                f"{after['visible']}, drawn paths {'changed' if after['paths'] != before['paths'] else 'UNCHANGED'}")


def check_page(driver, base: str, rel: str) -> Tuple[List[str], List[str], Dict[str, int]]:
    driver.get(f"{base}/{rel}")
    wait_for(driver, "return document.readyState === 'complete';")
    passed, failed, n_math = check_math(driver, rel)
    figures = wait_for(driver, FIGURES_JS, 2.0) or []
    if figures:
        wait_for(driver, "return Array.from(document.querySelectorAll('.plotly-graph-div'))"
                         ".every(g => g.querySelector('svg.main-svg'));", 20.0)
        figures = driver.execute_script(FIGURES_JS)
    for fig in figures:
        name = f"{rel} figure {fig['index']}"
        (passed if fig["drawn"] and fig["traces"] > 0 and not fig["missing"] else failed).append(
            f"{name}: drawn={fig['drawn']} traces={fig['traces']}"
            + (f" trace types not in the site's plotly.js: {sorted(set(fig['missing']))}" if fig["missing"] else ""))
        if fig["sliders"] and fig["drawn"]:
            ok, detail = move_slider(driver, fig["index"])
            (passed if ok else failed).append(f"{name} slider: {detail}")
    js_errors = driver.execute_script("return window.__errors || [];")
    console_errors, external = console_problems(driver, base)
    for err in js_errors + console_errors:
        failed.append(f"{rel}: JavaScript error: {err}")
    if not js_errors and not console_errors:
        passed.append(f"{rel}: no JavaScript errors")
    stats = {"math": n_math, "figures": len(figures), "sliders": sum(1 for f in figures if f["sliders"]),
             "external": len(external)}
    if stats["sliders"] < MIN_SLIDERS.get(rel, 0):
        failed.append(f"{rel}: {stats['sliders']} figures with a slider, expected at least {MIN_SLIDERS[rel]}")
    return passed, failed, stats


def main(argv: List[str]) -> int:
    verbose = "-v" in argv
    args = [a for a in argv[1:] if not a.startswith("-")]
    root = Path(args[0] if args else "_build/html").resolve()
    pages = sorted(p.relative_to(root).as_posix() for p in (root / "book").glob("*.html"))
    if not pages:
        print(f"no built pages under {root}/book; build the book first")
        print("0 passed, 1 failed")
        return 1
    server, base = serve(root)
    passed: List[str] = []
    failed: List[str] = []
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            print(f"{'page':32s} {'KB':>7s} {'formulas':>8s} {'figures':>8s} {'sliders':>8s} {'offline ext.':>12s}")
            for rel in pages:
                p, f, stats = check_page(driver, base, rel)
                passed += p
                failed += f
                size = (root / rel).stat().st_size / 1024
                print(f"{rel:32s} {size:7.0f} {stats['math']:8d} {stats['figures']:8d} {stats['sliders']:8d} {stats['external']:12d}"
                      f"{'' if not f else '  FAIL'}")
        finally:
            driver.quit()
            server.shutdown()
    for line in failed:
        print("FAILED", line)
    if verbose:
        for line in passed:
            print("ok", line)
    print(f"{len(passed)} passed, {len(failed)} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
