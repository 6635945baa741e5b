"""Benchmark of the web designer on the 9,099-bus SimBench grid 1-MVLV-semiurb-all-0-sw, in Debian's Chromium.

Usage: .venv/bin/python benchmarks/bench_web.py [--repeat 3]   (needs chromium; the baseline needs the bench extra)

Ours: `plurigrid serve` in its own process over a fresh data folder; a fresh browser context opens
`/#/designer?simbench=1-MVLV-semiurb-all-0-sw` signed in; time from navigation until the canvas has painted
every bus (`data-painted`). First with the server's drawing not yet made (it loads the SimBench grid and
caches the drawing on disk), then again (cached). Then the time of one zoom step (a wheel event to the
second animation frame after it). Target: first paint <= 3 s.

Baseline, same run, same browser: pandapower's own drawing of the same grid, `pandapower.plotting.plotly.
simple_plotly` (its Python time to write the figure, then Chromium's time to load and render that page).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench_api import start_server

CODE = "1-MVLV-semiurb-all-0-sw"
BUSES = 9099
PAINTED = f"() => document.querySelector('[data-testid=diagram-canvas]')?.dataset.painted === '{BUSES}'"
ZOOM = """() => new Promise(resolve => {
  const canvas = document.querySelector('[data-testid=diagram-canvas]');
  const box = canvas.getBoundingClientRect();
  const t0 = performance.now();
  canvas.dispatchEvent(new WheelEvent('wheel', {deltaY: -120, clientX: box.left + box.width / 2,
                                               clientY: box.top + box.height / 2, bubbles: true, cancelable: true}));
  requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t0)));
})"""


def first_paint(browser, url: str, token: str) -> tuple[float, object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(f"localStorage.setItem('plurigrid.token', {token!r})")
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(f"{url}/#/designer?simbench={CODE}")
    page.wait_for_function(PAINTED, timeout=120_000, polling="raf")
    return time.perf_counter() - t0, context


def baseline(browser) -> tuple[float, float]:
    from pandapower.plotting.plotly import simple_plotly

    from plurigrid.grid.cases import load_net

    net = load_net(f"simbench:{CODE}")
    out = Path(tempfile.mkdtemp()) / "simple_plotly.html"
    t0 = time.perf_counter()
    simple_plotly(net, auto_open=False, filename=str(out))
    python_s = time.perf_counter() - t0
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(out.as_uri())
    page.wait_for_function("() => document.querySelector('.js-plotly-plot')?._fullLayout !== undefined", timeout=300_000)
    browser_s = time.perf_counter() - t0
    context.close()
    return python_s, browser_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("needs Debian's chromium (apt-get install chromium)")
    data = Path(tempfile.mkdtemp(prefix="plurigrid-bench-web-"))
    proc, url, token = start_server(data)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            cold, context = first_paint(browser, url, token)
            context.close()
            warm = []
            for _ in range(args.repeat):
                seconds, context = first_paint(browser, url, token)
                warm.append(seconds)
            page = context.pages[0]
            zooms = [page.evaluate(ZOOM) for _ in range(10)]
            context.close()
            print(f"designer, {CODE} ({BUSES:,} buses), Chromium headless")
            print(f"{'what':60s} {'seconds':>8s}")
            print(f"{'first paint, server drawing the grid for the first time':60s} {cold:8.2f}")
            print(f"{f'first paint, drawing cached (median of {args.repeat})':60s} {statistics.median(warm):8.2f}")
            print(f"{'one zoom step, wheel to second frame (median of 10)':60s} {statistics.median(zooms) / 1000:8.3f}")
            print(f"target first paint <= 3 s (cached): {'met' if statistics.median(warm) <= 3 else 'MISSED'}")
            if not args.skip_baseline:
                python_s, browser_s = baseline(browser)
                print(f"{'baseline: pandapower simple_plotly, Python writing the page':60s} {python_s:8.2f}")
                print(f"{'baseline: the same page loaded and rendered in Chromium':60s} {browser_s:8.2f}")
                print(f"ratio, baseline total / ours cached: {(python_s + browser_s) / statistics.median(warm):.0f}x")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
