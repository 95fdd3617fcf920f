"""The pictures in README.md and docs/, taken from the running app:

    python -m harness.screenshots            # writes docs/screenshots/*.png (about a minute)
    python -m harness.screenshots compare    # only those named

It starts `streamlit run app.py`, opens each view in headless Chromium, hovers, drags and
draws as a user would, and saves what the browser shows. The tests never write here.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image

from harness.browser import ROOT, launch_chromium, streamlit_server
from harness.pages import IDLE

OUT = ROOT / "docs" / "screenshots"


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(IDLE, timeout=120_000)
    page.wait_for_timeout(800)  # Let plotly and the images finish painting.


def _plot_area(page, key: str) -> dict:
    page.wait_for_function(f"() => {{ const gd = document.querySelector('.st-key-{key} .js-plotly-plot');"
                           f" return gd && gd._fullLayout && gd._fullLayout.xaxis._length > 0; }}",
                           timeout=120_000)
    return page.evaluate(f"""() => {{ const gd = document.querySelector('.st-key-{key} .js-plotly-plot');
        const b = gd.getBoundingClientRect(), x = gd._fullLayout.xaxis, y = gd._fullLayout.yaxis;
        return {{left: b.left + x._offset, top: b.top + y._offset, width: x._length, height: y._length}}; }}""")


def hover(page, url: str) -> None:
    """The map with the decoder's drawing under the pointer, between two classes."""
    _open(page, f"{url}/map?background=digits&density=20&opacity=0.35")
    area = _plot_area(page, "map_chart")
    page.mouse.move(area["left"] + 0.56 * area["width"], area["top"] + 0.42 * area["height"], steps=12)
    page.wait_for_timeout(400)
    chart = page.locator(".st-key-map_chart").bounding_box()
    panel = page.locator(".st-key-live_map_hover").bounding_box()
    top = min(chart["y"], panel["y"]) - 10
    page.screenshot(path=str(OUT / "hover.png"), full_page=True, clip={
        "x": chart["x"] - 10, "y": top, "width": panel["x"] + 280 - chart["x"],
        "height": max(chart["y"] + chart["height"], panel["y"] + panel["height"]) + 10 - top})


def pad(page, url: str) -> None:
    _open(page, f"{url}/sliders?z1=-1.5&z2=0.5")
    page.locator("[data-testid=stMain]").screenshot(path=str(OUT / "sliders.png"))


def paths(page, url: str) -> None:
    _open(page, f"{url}/paths?a=5&b=17&steps=8")
    track = page.locator(".st-key-live_scrubber canvas.track").bounding_box()
    page.mouse.click(track["x"] + track["width"] * 0.45, track["y"] + track["height"] / 2)
    page.wait_for_timeout(300)
    page.screenshot(path=str(OUT / "paths.png"), full_page=True)


def grid(page, url: str) -> None:
    _open(page, f"{url}/grid")
    page.locator(".st-key-grid_chart").screenshot(path=str(OUT / "grid.png"))


def drawing(page, url: str) -> None:
    _open(page, f"{url}/upload")
    box = page.locator("[data-testid=stMain] canvas").last.bounding_box()
    x, top = box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.15
    page.mouse.move(x, top)
    page.mouse.down()
    for step in range(1, 21):  # A "1": one stroke down the middle of the box.
        page.mouse.move(x + step * 0.6, top + step * box["height"] * 0.035)
    page.mouse.up()
    page.get_by_text("2-D reconstruction").wait_for(timeout=60_000)
    page.wait_for_selector(IDLE)
    page.wait_for_timeout(800)
    page.screenshot(path=str(OUT / "draw.png"), full_page=True)


def formation(page, url: str) -> None:
    """Epochs 1, 3 and the last of the Fashion-MNIST 2-D model's training, side by side."""
    _open(page, f"{url}/train?dataset=fashion_mnist")
    find = ("() => [...document.querySelectorAll('.js-plotly-plot')].find(gd =>"
            " gd._transitionData && gd._transitionData._frames.length > 1)")
    page.wait_for_function(f"() => !!({find})()")
    frames = page.evaluate(f"() => ({find})()._transitionData._frames.length")
    chart = page.locator(".js-plotly-plot").filter(has=page.locator(".slider-container")).first
    chart.scroll_into_view_if_needed()
    panels = []
    for epoch in (1, 3, frames):
        page.evaluate(f"async () => {{ await Plotly.animate(({find})(), ['{epoch}'], {{mode: 'immediate',"
                      f" frame: {{duration: 0, redraw: false}}, transition: {{duration: 0}}}}); }}")
        page.wait_for_timeout(300)
        path = Path(tempfile.mkstemp(suffix=".png")[1])
        chart.screenshot(path=str(path))
        panels.append(Image.open(path))
    strip = Image.new("RGB", (sum(p.width for p in panels), max(p.height for p in panels)), "white")
    left = 0
    for panel in panels:
        strip.paste(panel, (left, 0))
        left += panel.width
    strip.save(OUT / "formation.png")


def compare(page, url: str) -> None:
    """The Compare page: a box selected on the left map and shown on the right, then a hover."""
    page.set_viewport_size({"width": 1400, "height": 1500})  # Streamlit scrolls inside: the table must fit.
    _open(page, f"{url}/compare?left=ae&right=umap")
    for key in ("compare_left", "compare_right"):
        page.wait_for_function(f"() => document.querySelector('.st-key-{key} .js-plotly-plot')"
                               f"?.dataset.points === '10000'", timeout=120_000)
    area = _plot_area(page, "compare_left")
    page.locator(".st-key-compare_left .modebar-btn[data-val=select]").click()
    page.mouse.move(area["left"] + 0.18 * area["width"], area["top"] + 0.35 * area["height"])
    page.mouse.down()
    page.mouse.move(area["left"] + 0.4 * area["width"], area["top"] + 0.65 * area["height"], steps=10)
    page.mouse.up()
    page.wait_for_selector(IDLE, timeout=120_000)
    page.mouse.move(area["left"] + 0.72 * area["width"], area["top"] + 0.3 * area["height"], steps=12)
    page.wait_for_timeout(600)
    main = page.locator("[data-testid=stMain]").bounding_box()
    table = page.locator("[data-testid=stTable]").bounding_box()
    page.screenshot(path=str(OUT / "compare.png"), full_page=True, clip={
        "x": main["x"], "y": main["y"], "width": main["width"], "height": table["y"] + table["height"] + 10 - main["y"]})


def main() -> int:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, streamlit_server(Path(folder) / "streamlit.log") as (url, _):
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            everything = (hover, pad, paths, grid, drawing, formation, compare)
            # Names on the command line take only those: python -m harness.screenshots compare
            for take in [take for take in everything if take.__name__ in sys.argv[1:]] or everything:
                take(page, url)
                print(f"took {take.__name__}", flush=True)
            browser.close()
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
