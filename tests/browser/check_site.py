"""Real-browser check of the built book: every page opened in headless Chromium as a reader opens it,
at 1366x768 (a laptop) and at 390x844 (a phone).

* At both sizes: the page loads without JavaScript errors; every plotly figure is drawn, fits the
  text column without its output box scrolling, and has a title that fits its width; plotly's
  toolbar (the modebar, in the place it has while the pointer is over the figure) covers neither
  the title nor the legend nor an annotation; no code block scrolls sideways (collapsed code cells
  opened); every formula is typeset by MathJax without a TeX error; the page does not scroll
  sideways (the element that sticks out is named).
* At 1366x768: every slider of every figure moves its figure (a mouse click on the slider rail, as a
  reader would, changes the drawn data); a chapter (``book/NN_*.html``, ``book/leaderboard.html``)
  shows a figure on its first screen: a figure's top is less than 768 px from the top of the page
  once fonts and formulas are in place.

    python tests/browser/check_site.py [-v] [_build/html]

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them).  The site is served
from 127.0.0.1, gzip-compressed as GitHub Pages serves it; the browser reaches nothing else.
Requests to outside hosts (e.g. MathJax's CDN, which CI cannot reach) are listed but are not errors;
any JavaScript exception or a failed request to the site itself is.  Prints one row per page, then
each failure as ``FAILED page @size ...``, and ends with a line ``N passed, M failed``; exit status 1
on any failure.
"""
from __future__ import annotations

import functools
import gzip
import http.server
import io
import re
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
#: the two screens a page is read on: name -> (width, height) in CSS pixels
LAPTOP, PHONE = "1366x768", "390x844"
SIZES = {LAPTOP: (1366, 768), PHONE: (390, 844)}
#: pages that must show a figure on their first screen
CHAPTER = re.compile(r"book/(\d\d_.*|leaderboard)\.html")

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

# A figure's slider (arguments: figure, slider) and what the figure draws: every line, marker, bar,
# contour, shape and heatmap image, so that any change a slider makes to the plot shows.
STATE_JS = """
const gd = document.querySelectorAll('.plotly-graph-div')[arguments[0]];
const slider = gd.layout.sliders[arguments[1]];
const visible = (gd._fullData || []).filter(t => t.visible === true).map(t => t.index);
const paths = Array.from(gd.querySelectorAll(
    '.scatterlayer path.js-line, .scatterlayer path.point, .barlayer path, .contourlayer path, '
    + '.heatmaplayer image, .shapelayer path'))
  .map(p => p.getAttribute('d') + (p.getAttribute('transform') || '') + (p.getAttribute('href') || '')).join('|');
return {active: slider.active || 0, steps: slider.steps.length, visible: visible, paths: paths};
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

# Resolves once the page's fonts (the theme's and MathJax's) have loaded and two frames have been laid
# out after that, so that what is measured next is what a reader sees.
SETTLED_JS = """
const done = arguments[arguments.length - 1];
document.fonts.ready.then(() => requestAnimationFrame(() => requestAnimationFrame(() => done(true))));
"""

# A short name for an element in a failure line: tag.class#id "its first words", or the plotly figure
# it is part of.
DESCRIBE_JS = """
window.__describe = function (el) {
  const figures = Array.from(document.querySelectorAll('.plotly-graph-div'));
  const gd = figures.find(g => el.contains(g) || g.contains(el));
  if (gd) return 'plotly figure ' + figures.indexOf(gd);
  const cls = Array.from(el.classList).slice(0, 2).map(c => '.' + c).join('');
  const text = (el.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 50);
  return el.tagName.toLowerCase() + cls + (el.id ? '#' + el.id : '') + (text ? ' "' + text + '"' : '');
};
"""

# Where the page's first figure is, in pixels from the top of the page, and the tallest blocks of the
# text above it (what pushes it down).
FIRST_FIGURE_JS = DESCRIBE_JS + """
const gd = document.querySelector('.plotly-graph-div');
if (!gd) return null;
const top = gd.getBoundingClientRect().top + window.scrollY;
const article = document.querySelector('article.bd-article') || document.body;
const above = Array.from(article.querySelectorAll('section > *, article > *'))
  .filter(el => !el.contains(gd) && el.getBoundingClientRect().bottom + window.scrollY <= top + 1
                && el.tagName !== 'SECTION')
  .map(el => [Math.round(el.getBoundingClientRect().height), window.__describe(el)])
  .sort((a, b) => b[0] - a[0]).slice(0, 3);
return {top: Math.round(top), height: Math.round(gd.getBoundingClientRect().height), above: above};
"""

# Every code block of a cell input, collapsed cells opened first: its content and box widths.
CODE_JS = """
document.querySelectorAll('div.cell details').forEach(d => { d.open = true; });
const cells = Array.from(document.querySelectorAll('div.cell'));
return Array.from(document.querySelectorAll('div.cell_input pre')).filter(pre => pre.getClientRects().length)
  .map(pre => ({cell: cells.indexOf(pre.closest('div.cell')), scroll: pre.scrollWidth, client: pre.clientWidth,
                longest: pre.textContent.split('\\n').reduce((a, b) => b.length > a.length ? b : a, '').trim()}));
"""

# How wide the page is against the window, and when it is wider, the outermost visible elements that
# stick out on the right and are not inside a box of their own that scrolls or clips them.
PAGE_WIDTH_JS = DESCRIBE_JS + """
const root = document.documentElement, width = root.clientWidth;
const result = {scroll: root.scrollWidth, client: width, offenders: []};
if (root.scrollWidth <= width + 1) return result;
const sticksOut = new Set();
for (const el of document.body.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.right + window.scrollX <= width + 1) continue;
  let contained = false;
  for (let a = el; a && a !== document.body; a = a.parentElement) {
    const s = getComputedStyle(a);
    if (s.position === 'fixed' || s.visibility === 'hidden' || (a !== el && s.overflowX !== 'visible')) { contained = true; break; }
  }
  if (!contained) sticksOut.add(el);
}
result.offenders = Array.from(sticksOut).filter(el => !sticksOut.has(el.parentElement)).slice(0, 5)
  .map(el => [Math.round(el.getBoundingClientRect().right + window.scrollX), window.__describe(el)]);
return result;
"""

# Every figure's drawn width against the text column it sits in, and whether the output box around it
# scrolls (a figure wider than the column, or plotly's toolbar hanging out of the box).
FIGURE_BOXES_JS = """
return Array.from(document.querySelectorAll('.plotly-graph-div')).map((gd, i) => {
  const svg = gd.querySelector('svg.main-svg');
  const box = gd.closest('div.output') || gd.parentElement;
  const r = svg ? svg.getBoundingClientRect() : {width: 0, right: 0};
  return {index: i, width: Math.round(r.width), right: Math.round(r.right + window.scrollX),
          column: box.clientWidth, window: document.documentElement.clientWidth,
          sideways: box.scrollWidth - box.clientWidth, down: box.scrollHeight - box.clientHeight};
});
"""

# A figure's title and what else is written along its edges (legend, annotations), and where plotly's
# toolbar is; for each of them that the toolbar covers, by how many pixels across and down.
TOOLBAR_JS = """
const gd = document.querySelectorAll('.plotly-graph-div')[arguments[0]];
const title = gd.querySelector('.g-gtitle .gtitle');
const bar = gd.querySelector('.modebar');
const result = {title: title ? title.textContent.trim() : '', toolbar: !!bar, covered: [], cut: 0};
if (title) {  // pixels of the title outside the figure, left or right
  const t = title.getBoundingClientRect(), f = gd.querySelector('svg.main-svg').getBoundingClientRect();
  result.cut = Math.round(Math.max(0, f.left - t.left) + Math.max(0, t.right - f.right));
}
if (!bar) return result;
const b = bar.getBoundingClientRect();
const parts = [['title', title]].concat(
  Array.from(gd.querySelectorAll('.legend')).map(el => ['legend', el]),
  Array.from(gd.querySelectorAll('.annotation')).map(el => ['annotation', el]));
for (const [what, el] of parts) {
  if (!el) continue;
  const r = el.getBoundingClientRect();
  const dx = Math.min(b.right, r.right) - Math.max(b.left, r.left);
  const dy = Math.min(b.bottom, r.bottom) - Math.max(b.top, r.top);
  if (r.width > 0 && dx > 0.5 && dy > 0.5)
    result.covered.push({what: what, text: el.textContent.trim().slice(0, 40), dx: Math.round(dx), dy: Math.round(dy)});
}
return result;
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


def set_screen(driver, size: str) -> None:
    """Lay pages out on a screen of ``SIZES[size]`` CSS pixels (the window's inner size); on the phone,
    scrollbars take no room, as a phone's do not."""
    width, height = SIZES[size]
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    driver.execute_cdp_cmd("Emulation.setScrollbarsHidden", {"hidden": size == PHONE})


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


def move_slider(driver, fig_index: int, slider: int) -> Tuple[bool, str]:
    """Click rail ``slider`` of figure ``fig_index`` at the far end from its active step: the active
    step must change and so must what the figure draws."""
    before = driver.execute_script(STATE_JS, fig_index, slider)
    gd = driver.find_elements(By.CSS_SELECTOR, ".plotly-graph-div")[fig_index]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", gd)
    rail = gd.find_elements(By.CSS_SELECTOR, ".slider-container .slider-group")[slider].find_element(
        By.CSS_SELECTOR, ".slider-rail-touch-rect")
    width = rail.size["width"]
    go_left = before["active"] > (before["steps"] - 1) / 2
    offset = int(-width / 2 + 3) if go_left else int(width / 2 - 3)
    ActionChains(driver).move_to_element_with_offset(rail, offset, 0).click().perform()
    # plotly runs the step's command on the next animation frame after the click
    end = time.time() + 5.0
    after = driver.execute_script(STATE_JS, fig_index, slider)
    while after["paths"] == before["paths"] and time.time() < end:
        time.sleep(0.1)
        after = driver.execute_script(STATE_JS, fig_index, slider)
    moved = after["paths"] != before["paths"]
    return (after["active"] != before["active"] and moved,
            f"step {before['active']}->{after['active']} of {before['steps']}, visible traces {before['visible']}->"
            f"{after['visible']}, drawn data {'changed' if moved else 'UNCHANGED'}")


class Report:
    """The passed and failed lines of one page, each line naming the page and the screen size."""

    def __init__(self, rel: str) -> None:
        self.rel, self.passed, self.failed = rel, [], []

    def add(self, ok: bool, size: str, what: str) -> None:
        (self.passed if ok else self.failed).append(f"{self.rel} @{size} {what}")


def open_page(driver, url: str, report: Report, size: str) -> Tuple[List[dict], int]:
    """Open ``url`` on a ``size`` screen and wait until its formulas, figures and fonts are in place;
    reports the formulas and whether each figure is drawn; returns the figures and the number of
    formulas."""
    set_screen(driver, size)
    driver.get(url)
    wait_for(driver, "return document.readyState === 'complete';")
    passed, failed, n_math = check_math(driver, f"{report.rel} @{size}")
    report.passed += passed
    report.failed += failed
    figures = wait_for(driver, FIGURES_JS, 2.0) or []
    if figures:
        wait_for(driver, "return Array.from(document.querySelectorAll('.plotly-graph-div'))"
                         ".every(g => g.querySelector('svg.main-svg'));", 20.0)
        figures = driver.execute_script(FIGURES_JS)
    driver.execute_async_script(SETTLED_JS)
    for fig in figures:
        report.add(fig["drawn"] and fig["traces"] > 0 and not fig["missing"], size,
                   f"figure {fig['index']}: drawn={fig['drawn']} traces={fig['traces']}"
                   + (f" trace types not in the site's plotly.js: {sorted(set(fig['missing']))}" if fig["missing"] else ""))
    return figures, n_math


def check_first_screen(driver, report: Report) -> int:
    """A chapter's first figure starts on the first 1366x768 screen; returns its top (-1: no figure)."""
    height = SIZES[LAPTOP][1]
    first = driver.execute_script(FIRST_FIGURE_JS)
    if first is None:
        report.add(False, LAPTOP, "first screen: the chapter has no plotly figure")
        return -1
    shown = max(0, min(first["height"], height - first["top"]))
    above = "; ".join(f"{h} px {what}" for h, what in first["above"])
    report.add(first["top"] < height, LAPTOP,
               f"first screen: figure 0 starts {first['top']} px from the top of the page, "
               f"{shown} of its {first['height']} px on the {height} px screen"
               + ("" if first["top"] < height else f"; tallest blocks above it: {above}"))
    return first["top"]


def check_code(driver, report: Report, size: str) -> None:
    blocks = driver.execute_script(CODE_JS)
    wide = [b for b in blocks if b["scroll"] > b["client"] + 1]
    for b in wide:
        report.add(False, size, f"code in cell {b['cell']} scrolls sideways: {b['scroll']} px of code in a "
                                f"{b['client']} px box (+{b['scroll'] - b['client']} px), longest line {b['longest'][:60]!r}")
    if blocks and not wide:
        report.add(True, size, f"{len(blocks)} code blocks, none scrolls sideways")


def check_page_width(driver, report: Report, size: str) -> None:
    page = driver.execute_script(PAGE_WIDTH_JS)
    offenders = "; ".join(f"{what} reaching {right} px" for right, what in page["offenders"])
    report.add(page["scroll"] <= page["client"] + 1, size,
               f"page width: {page['scroll']} px in a {page['client']} px window"
               + (f" (+{page['scroll'] - page['client']} px, sticking out: {offenders})" if offenders else ""))


def check_figure_boxes(driver, report: Report, size: str) -> None:
    """Every figure fits its text column and its output box does not scroll."""
    for fig in driver.execute_script(FIGURE_BOXES_JS):
        fits = fig["width"] <= fig["column"] + 1 and fig["right"] <= fig["window"] + 1
        still = fig["sideways"] <= 1 and fig["down"] <= 1
        report.add(fits and still, size, f"figure {fig['index']} width: {fig['width']} px in a {fig['column']} px column"
                   + ("" if fits else " (a fixed layout width? let it follow the column)")
                   + ("" if still else f"; its output box scrolls {fig['sideways']} px sideways, {fig['down']} px down"))


#: per figure, the pairs of its texts (subplot titles, other annotations, axis titles) drawn over each other
TEXT_OVERLAP_JS = """
return Array.from(document.querySelectorAll('.plotly-graph-div')).map((gd, index) => {
  const texts = Array.from(gd.querySelectorAll('.infolayer .annotation, .g-xtitle, .g-x2title, .g-x3title, '
                                               + '.g-ytitle, .g-y2title, .g-y3title'))
    .map(e => [e.textContent.trim(), e.getBoundingClientRect()]).filter(([t, r]) => t && r.width > 0);
  const overlaps = [];
  for (let a = 0; a < texts.length; a++) for (let b = a + 1; b < texts.length; b++) {
    const [ta, A] = texts[a], [tb, B] = texts[b];
    if (A.left < B.right - 1 && B.left < A.right - 1 && A.top < B.bottom - 1 && B.top < A.bottom - 1)
      overlaps.push([ta.slice(0, 50), tb.slice(0, 50)]);
  }
  return {index, overlaps};
});"""


def check_text_overlaps(driver, report: Report, size: str) -> None:
    """No two texts of a figure (subplot titles, axis titles, annotations) are drawn over each other."""
    for fig in driver.execute_script(TEXT_OVERLAP_JS):
        pairs = "; ".join(f"{a!r} over {b!r}" for a, b in fig["overlaps"])
        report.add(not fig["overlaps"], size, f"figure {fig['index']} texts "
                   + (f"overlap: {pairs} (shorten them)" if pairs else "do not overlap"))


def check_titles_and_toolbar(driver, report: Report, size: str, figures: List[dict]) -> None:
    """Every drawn figure has a title that fits its width, and its toolbar, placed as when the pointer is
    over the figure, covers no text along the figure's edges."""
    elements = driver.find_elements(By.CSS_SELECTOR, ".plotly-graph-div")
    for fig in figures:
        if not fig["drawn"]:
            continue
        gd = elements[fig["index"]]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", gd)
        ActionChains(driver).move_to_element(gd).perform()
        found = driver.execute_script(TOOLBAR_JS, fig["index"])
        name = f"figure {fig['index']}"
        if not found["title"]:
            report.add(False, size, f"{name} has no title (layout.title)")
        else:
            report.add(found["cut"] <= 1, size, f"{name} title {found['title'][:60]!r}"
                       + (f" runs {found['cut']} px past the figure's edges (shorten it, or break it with <br>)"
                          if found["cut"] > 1 else " fits"))
        covered = ", ".join(f"{c['what']} {c['text']!r} by {c['dx']}x{c['dy']} px" for c in found["covered"])
        if found["toolbar"]:
            report.add(not covered, size, f"{name} toolbar covers " + (covered or "nothing"))


def page_errors(driver, base: str) -> Tuple[List[str], List[str]]:
    """(JavaScript errors, failed external requests) of the open page since it was opened."""
    js_errors = driver.execute_script("return window.__errors || [];")
    console_errors, external = console_problems(driver, base)
    return js_errors + console_errors, external


def check_screen(driver, report: Report, size: str, figures: List[dict]) -> None:
    """The checks made at both sizes, on the open page."""
    check_code(driver, report, size)  # opens the collapsed code cells
    check_page_width(driver, report, size)
    check_figure_boxes(driver, report, size)
    check_text_overlaps(driver, report, size)
    check_titles_and_toolbar(driver, report, size, figures)


def check_page(driver, base: str, rel: str) -> Tuple[List[str], List[str], Dict[str, int]]:
    report = Report(rel)
    url = f"{base}/{rel}"
    figures, n_math = open_page(driver, url, report, LAPTOP)
    first_top = check_first_screen(driver, report) if CHAPTER.fullmatch(rel) else -1
    for fig in figures:
        for slider in range(fig["sliders"] if fig["drawn"] else 0):
            ok, detail = move_slider(driver, fig["index"], slider)
            report.add(ok, LAPTOP, f"figure {fig['index']} slider {slider}: {detail}")
    check_screen(driver, report, LAPTOP, figures)
    errors, external = page_errors(driver, base)
    figures, _ = open_page(driver, url, report, PHONE)
    check_screen(driver, report, PHONE, figures)
    phone_errors, _ = page_errors(driver, base)
    for err in errors + phone_errors:
        report.failed.append(f"{rel}: JavaScript error: {err}")
    if not errors and not phone_errors:
        report.passed.append(f"{rel}: no JavaScript errors")
    stats = {"math": n_math, "figures": len(figures), "sliders": sum(1 for f in figures if f["sliders"]),
             "external": len(external), "first": first_top}
    if stats["sliders"] < MIN_SLIDERS.get(rel, 0):
        report.failed.append(f"{rel}: {stats['sliders']} figures with a slider, expected at least {MIN_SLIDERS[rel]}")
    return report.passed, report.failed, stats


def main(argv: List[str]) -> int:
    verbose = "-v" in argv
    args = [a for a in argv[1:] if not a.startswith("-")]
    root = Path(args[0] if args else "_build/html").resolve()
    pages = sorted(p.relative_to(root).as_posix() for p in (root / "book").glob("*.html"))
    if not pages:
        print(f"no built pages under {root}/book; build the book first")
        print("0 passed, 1 failed")
        return 1
    start = time.time()
    server, base = serve(root)
    passed: List[str] = []
    failed: List[str] = []
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            print(f"{'page':32s} {'KB':>7s} {'formulas':>8s} {'figures':>8s} {'sliders':>8s} {'1st fig':>8s} "
                  f"{'offline ext.':>12s}")
            for rel in pages:
                p, f, stats = check_page(driver, base, rel)
                passed += p
                failed += f
                size = (root / rel).stat().st_size / 1024
                first = f"{stats['first']} px" if stats["first"] >= 0 else "-"
                print(f"{rel:32s} {size:7.0f} {stats['math']:8d} {stats['figures']:8d} {stats['sliders']:8d} "
                      f"{first:>8s} {stats['external']:12d}{'' if not f else f'  FAIL ({len(f)})'}")
        finally:
            driver.quit()
            server.shutdown()
    for line in failed:
        print("FAILED", line)
    if verbose:
        for line in passed:
            print("ok", line)
    print(f"{len(passed)} passed, {len(failed)} failed ({len(pages)} pages in {time.time() - start:.0f} s)")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
