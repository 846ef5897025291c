"""Page speed of the built book as a first-time reader on an ordinary connection gets it.

    python benchmarks/bench_site.py [_build/html] [--runs 3] [--mbit 10] [--rtt 40]

Serves the built site from 127.0.0.1 gzip-compressed, as GitHub Pages does (the browser check's
server, ``tests/browser/check_site.py``), and opens every chapter in headless Chromium with an empty
cache and the network throttled through the DevTools protocol (``Network.emulateNetworkConditions``:
``--mbit`` Mbit/s down and up, ``--rtt`` ms added to each request).  Per chapter it prints the bytes
transferred (all of the page's requests, and those finished before the first figure) and the time
from navigation start to the first drawn plotly figure (the first animation frame in which a figure's
SVG holds a trace), the median of ``--runs`` loads, throttled and unthrottled: the unthrottled
column is what parsing and drawing cost on this machine's CPU.  The last column is when MathJax had
typeset the page's formulas (throttled).  The target is a first figure within
2 s at 10 Mbit/s.  The local server speaks HTTP/1.1 (at most 6 connections per host) where Pages
speaks HTTP/2.

Timings depend on the CPU: take them on a quiet machine (the header prints the load average).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))
from check_site import browser, serve  # noqa: E402  (the browser check's server and Chromium)
from selenium.common.exceptions import TimeoutException  # noqa: E402

TARGET_S = 2.0

# Runs before the page's own scripts: from then on, every animation frame looks for the first plotly
# figure whose SVG holds a trace (scatter, bar or heatmap) and records when it was found; and records
# when MathJax has typeset the page's formulas.
FIRST_FIGURE_HOOK = """
window.__firstFigure = null;
window.__mathDone = null;
(function poll() {
  if (document.querySelector('.js-plotly-plot .main-svg .trace, .js-plotly-plot .main-svg .hm')) {
    window.__firstFigure = performance.now();
  } else {
    requestAnimationFrame(poll);
  }
})();
(function pollMath() {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => { window.__mathDone = performance.now(); });
  } else if (document.readyState !== 'complete' || document.querySelector('.math')) {
    requestAnimationFrame(pollMath);
  }
})();
"""

# Bytes over the wire (headers included) of the page and of everything it requested; the part that
# had arrived when the first figure was drawn.
BYTES_JS = """
const fig = window.__firstFigure;
const entries = performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'));
return {figure_ms: fig, math_ms: window.__mathDone, requests: entries.length,
        total: entries.reduce((s, e) => s + e.transferSize, 0),
        before: entries.filter(e => fig !== null && e.responseEnd <= fig).reduce((s, e) => s + e.transferSize, 0)};
"""


def load(driver, url: str, timeout: float = 60.0) -> Dict[str, float]:
    """Open ``url`` with an empty cache; the first figure's time (ms) and the bytes transferred."""
    try:
        driver.get(url)
    except TimeoutException:  # the page did not finish loading within the driver's page-load timeout
        return {"figure_ms": None, "math_ms": None, "requests": 0, "total": 0, "before": 0}
    end = time.time() + timeout
    while driver.execute_script("return window.__firstFigure;") is None and time.time() < end:
        time.sleep(0.05)
    seen, quiet_since = -1, time.time()
    while time.time() - quiet_since < 1.0 and time.time() < end:  # late requests (fonts, MathJax parts)
        n = driver.execute_script("return performance.getEntriesByType('resource').length;")
        if n != seen:
            seen, quiet_since = n, time.time()
        time.sleep(0.1)
    return driver.execute_script(BYTES_JS)


def throttle(driver, mbit: float, rtt_ms: float) -> None:
    rate = mbit * 1e6 / 8 if mbit > 0 else -1  # bytes/s; -1: no limit
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": rtt_ms if mbit > 0 else 0,
        "downloadThroughput": rate, "uploadThroughput": rate})


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("site", nargs="?", default="_build/html")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mbit", type=float, default=10.0)
    ap.add_argument("--rtt", type=float, default=40.0)
    args = ap.parse_args(argv[1:])
    root = Path(args.site).resolve()
    pages = sorted(p.relative_to(root).as_posix() for p in (root / "book").glob("[0-9]*.html"))
    if not pages:
        print(f"no built chapters under {root}/book; build the book first")
        return 1
    server, base = serve(root)
    print(f"site {root}, {args.runs} cold-cache loads per page, median; load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f"; {os.cpu_count()} CPUs")
    head = (f"{'chapter':28s} {'requests':>8s} {'KB total':>9s} {'KB before fig':>13s} "
            f"{'1st fig @' + format(args.mbit, 'g') + ' Mbit/s':>18s} {'1st fig unthrottled':>19s} "
            f"{'math typeset @' + format(args.mbit, 'g'):>16s}")
    print(head)
    print("-" * len(head))
    slow = []
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FIRST_FIGURE_HOOK})
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
            for rel in pages:  # unmeasured: the server compresses every file once, Chromium warms up
                load(driver, f"{base}/{rel}")
            for rel in pages:
                results = {}
                for mbit in (args.mbit, 0):
                    throttle(driver, mbit, args.rtt)
                    results[mbit] = [load(driver, f"{base}/{rel}") for _ in range(args.runs)]
                runs = results[args.mbit]
                fig = [r["figure_ms"] for r in runs]
                fast = [r["figure_ms"] for r in results[0]]
                if None in fig or None in fast:
                    print(f"{rel:28s} no figure drawn within 60 s")
                    slow.append(rel)
                    continue
                t, t0 = statistics.median(fig) / 1000, statistics.median(fast) / 1000
                math = [r["math_ms"] for r in runs if r["math_ms"] is not None]
                math_s = f"{statistics.median(math) / 1000:15.2f}s" if math else f"{'-':>16s}"
                if t > TARGET_S:
                    slow.append(rel)
                print(f"{rel:28s} {runs[-1]['requests']:8d} {runs[-1]['total'] / 1024:9.0f} "
                      f"{statistics.median(r['before'] for r in runs) / 1024:13.0f} {t:17.2f}s {t0:18.2f}s {math_s}")
        finally:
            driver.quit()
            server.shutdown()
    print(f"target: first figure within {TARGET_S:g} s at {args.mbit:g} Mbit/s, {args.rtt:g} ms RTT: "
          + ("met by every chapter" if not slow else f"missed by {', '.join(slow)}"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
