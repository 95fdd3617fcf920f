"""Server start → map drawn, this tree against another commit in the same run; then a click
and a slider key on each tree, as a user feels them.

    python -m benchmarks.cold_start --against 3e773d7 --pairs 4

The other commit is checked out once into a temporary git worktree. Each pair starts one
server of each tree in turn (the order alternates), so that a busy moment hurts both; the
first start of each tree is a warm-up that fills its caches and is not counted. A start is
timed from launching ``streamlit run app.py`` to the map drawn in Chromium with all 10,000
test images in its traces. Results go to ``benchmarks/results/cold_start.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from harness.browser import PICK_ISOLATED_POINT, ROOT, launch_chromium, streamlit_server
from harness.pages import IDLE, POINT_SHOWN

# All the map's points drawn, whichever way the tree sends them (in the figure, or filled in
# by the browser from an asset).
ALL_POINTS = ("() => { const gd = document.querySelector('.js-plotly-plot');"
              " return gd && gd._fullData && gd._fullData.reduce((n, t) => n + (t.x ? t.x.length : 0), 0) >= 10000; }")
CLICKS = 12
KEYS = 25


@contextlib.contextmanager
def worktree(commit: str):
    """``commit`` checked out in a temporary folder, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="cold-start-")) / commit
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), commit], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, capture_output=True)


def cold_start(browser, folder: Path, log: Path) -> float:
    """Seconds from launching ``folder``'s server to its map drawn with every point."""
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.set_default_timeout(180_000)
    started = time.perf_counter()
    with streamlit_server(log, timeout=180, folder=folder) as (url, _):
        page.goto(f"{url}/map")
        page.wait_for_function(ALL_POINTS, polling=50)
        seconds = time.perf_counter() - started
    page.close()
    return seconds


def click_seconds(page, count: int = CLICKS) -> list[float]:
    """On the drawn map: click an isolated point ``count`` times; seconds to its three images."""
    clicks = []
    for attempt in range(count):
        target = page.evaluate(PICK_ISOLATED_POINT, [6, 31 + attempt * 7])
        page.mouse.move(target["px"], target["py"])
        page.wait_for_timeout(300)  # Plotly's hover must register first; not timed.
        begin = time.perf_counter()
        page.mouse.click(target["px"], target["py"])
        page.wait_for_function(POINT_SHOWN, arg=target["index"], polling="raf")
        clicks.append(time.perf_counter() - begin)
        page.wait_for_selector(IDLE)
    return clicks


def slider_key_seconds(page, url: str, count: int = KEYS) -> list[float]:
    """Open the Sliders page and press an arrow key on z1 ``count`` times; seconds until the
    pad draws the new point (the value goes to the server and back, then the browser decodes)."""
    page.goto(f"{url}/sliders")
    canvas = page.locator(".st-key-live_pad canvas.digit")
    page.wait_for_function("(c) => !!c.dataset.z", arg=canvas.element_handle())
    page.wait_for_selector(IDLE)
    page.locator("[data-testid=stSlider] input[type=range]").first.focus()
    keys = []
    for step in range(count):
        previous = canvas.get_attribute("data-z")
        begin = time.perf_counter()
        page.keyboard.press("ArrowRight" if step % 10 < 5 else "ArrowLeft")
        page.wait_for_function("([c, previous]) => c.dataset.z !== previous",
                               arg=[canvas.element_handle(), previous], polling="raf")
        keys.append(time.perf_counter() - begin)
        page.wait_for_timeout(150)
    return keys


def clicks_and_keys(browser, folder: Path, log: Path) -> tuple[list[float], list[float]]:
    """``folder``'s click → its three images, and slider key → the pad's new image, in seconds."""
    page = browser.new_page(viewport={"width": 1500, "height": 1300})
    page.set_default_timeout(120_000)
    with streamlit_server(log, folder=folder) as (url, _):
        page.goto(f"{url}/map")
        page.wait_for_function(ALL_POINTS)
        page.wait_for_selector(IDLE)
        clicks = click_seconds(page)
        keys = slider_key_seconds(page, url)
    page.close()
    return clicks, keys


def _ms(seconds: list[float]) -> str:
    """p50 and p95 in milliseconds, as table cells."""
    return f"{statistics.median(seconds) * 1000:.0f} ms | {sorted(seconds)[int(0.95 * (len(seconds) - 1))] * 1000:.0f} ms"


def report(against: str, starts: dict[str, list[float]], paths: dict[str, tuple[list[float], list[float]]]) -> str:
    ours, theirs = starts["this tree"], starts[against]
    ratios = [a / b for a, b in zip(ours, theirs)]
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"] * 3
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    lines = [
        "# Cold start against an earlier commit, and the paths a user feels",
        "",
        f"`python -m benchmarks.cold_start --against {against} --pairs {len(ours)}` on {head.stdout.strip()}, "
        f"{time.strftime('%Y-%m-%d %H:%M')} UTC; {platform.processor() or platform.machine()}, "
        f"load average at the end {' '.join(load)}.",
        "",
        "| server start → map drawn with 10,000 points | each pair | median |",
        "|---|---|---|",
        f"| this tree | {', '.join(f'{s:.2f}' for s in ours)} s | {statistics.median(ours):.2f} s |",
        f"| {against} | {', '.join(f'{s:.2f}' for s in theirs)} s | {statistics.median(theirs):.2f} s |",
        f"| ratio | {', '.join(f'{r:.2f}' for r in ratios)} | {statistics.median(ratios):.2f} (target ≤ 0.6) |",
        "",
        f"| after the starts ({CLICKS} clicks, {KEYS} keys each) | p50 | p95 | target p50 |",
        "|---|---|---|---|",
    ]
    for name, (clicks, keys) in paths.items():
        lines += [f"| {name}: click a map point → its three images | {_ms(clicks)} | ≤ 250 ms |",
                  f"| {name}: slider key → the pad's new image | {_ms(keys)} | ≤ 120 ms |"]
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cold_start", description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="3e773d7", help="the commit to compare the cold start with")
    parser.add_argument("--pairs", type=int, default=4, help="alternating starts of each tree, counted")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cold_start.md"))
    arguments = parser.parse_args()
    if arguments.pairs < 1:
        parser.error(f"--pairs must be at least 1, not {arguments.pairs}.")
    from playwright.sync_api import sync_playwright

    logs = Path(tempfile.mkdtemp(prefix="cold-start-logs-"))
    with worktree(arguments.against) as other, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        trees = {"this tree": ROOT, arguments.against: other}
        for name, folder in trees.items():  # Warm-up: caches filled, not counted.
            cold_start(browser, folder, logs / f"warm-{folder.name}.log")
        starts = {name: [] for name in trees}
        for pair in range(arguments.pairs):
            order = list(trees.items()) if pair % 2 == 0 else list(trees.items())[::-1]
            for name, folder in order:
                starts[name].append(cold_start(browser, folder, logs / f"{pair}-{folder.name}.log"))
                print(f"pair {pair + 1}: {name} {starts[name][-1]:.2f} s", flush=True)
        paths = {name: clicks_and_keys(browser, folder, logs / f"paths-{folder.name}.log")
                 for name, folder in trees.items()}
        browser.close()
    text = report(arguments.against, starts, paths)
    Path(arguments.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
