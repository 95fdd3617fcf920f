"""What tests and benchmarks do to the app's pages in Chromium (Playwright's async API): wait
for a page to draw, click a map point, switch page, upload a digit, rerun.

    index = await click_point(page, pick=11)       # an isolated point, once its images show
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from playwright.async_api import TimeoutError as PlaywrightTimeout

from .browser import PICK_ISOLATED_POINT

IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"  # The page's script has finished.
# Drawn with its points: the browser fills the figure's traces from the points asset.
MAP_DRAWN = ("() => { const gd = document.querySelector('.js-plotly-plot');"
             " return gd && gd._fullData && gd._fullData.length >= 10 && Number(gd.dataset.points) >= 10000; }")
# The clicked point's heading and its three images, each loaded (an image served by another
# replica than the session's would be a 404, and never load).
POINT_SHOWN = ("(index) => { const h = [...document.querySelectorAll('h3')].find("
               "e => e.textContent.includes('Test image #' + index + ' '));"
               " const imgs = [...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img')];"
               " return h && imgs.length >= 3 && imgs.every(i => i.complete && i.naturalWidth > 0); }")


async def rerun(page, tries: int = 3) -> None:
    """Press R (Streamlit's rerun key) and wait until that rerun has finished. The key is
    pressed with nothing focused (an input would take it), and again if no rerun starts."""
    await page.evaluate("() => { window.__ran = false; window.__watch && window.__watch.disconnect();"
                        " window.__watch = new MutationObserver((changes) => {"
                        " if (changes.some((c) => c.oldValue === 'running')"
                        " || document.querySelector('[data-test-script-state=running]')) window.__ran = true; });"
                        " window.__watch.observe(document.body, {attributes: true, subtree: true,"
                        " attributeOldValue: true, attributeFilter: ['data-test-script-state']}); }")
    for attempt in range(tries):
        await page.evaluate("() => { const e = document.activeElement; if (e && e.blur) e.blur(); }")
        await page.keyboard.press("r")
        try:
            await page.wait_for_function("() => window.__ran", timeout=20_000)
            break
        except Exception:
            if attempt == tries - 1:
                raise
    await page.wait_for_selector(IDLE)


async def click_point(page, pick: int) -> int:
    """Click an isolated point of the map (the ``pick``-th choice); return its test index once
    its heading and images are shown."""
    target = await page.evaluate(PICK_ISOLATED_POINT, [6, 37 + pick])
    await page.mouse.move(target["px"], target["py"])
    await page.wait_for_timeout(300)  # Plotly's hover must register first.
    await page.mouse.click(target["px"], target["py"])
    await page.wait_for_function(POINT_SHOWN, arg=target["index"], polling=100)
    await page.wait_for_selector(IDLE)
    return target["index"]


async def upload(page, name: str, data: bytes) -> None:
    """Upload ``data`` on the "Your image" page and wait for its results; if they never come,
    fail with what the page shows instead (a rare CI failure left nothing else to go on)."""
    await page.locator("[data-testid=stFileUploader] input[type=file]").set_input_files(
        files=[{"name": name, "mimeType": "image/png", "buffer": data}])
    try:
        await page.get_by_text(f"Results for your upload ({name})").wait_for()
    except PlaywrightTimeout as timeout:
        raise AssertionError(f"no results for {name}; the page shows: {await page_state(page)}") from timeout
    await page.get_by_text("2-D reconstruction").wait_for()
    await page.wait_for_selector(IDLE)


# What a failing wait reports: the page, the script's state, the connection, the uploader's
# file, the text boxes' values, the main text, whether a plot is drawn. For the sync API too:
# page.evaluate(PAGE_STATE).
PAGE_STATE = ("() => ({path: location.pathname, plot: !!document.querySelector('.js-plotly-plot'),"
              " script: document.querySelector('[data-testid=stApp]')?.dataset.testScriptState,"
              " connection: document.querySelector('[data-testid=stStatusWidget]')?.innerText || '',"
              " uploader: document.querySelector('[data-testid=stFileUploader]')?.innerText.slice(0, 300),"
              " text_boxes: [...document.querySelectorAll('[data-testid=stMain] input[type=text]')].map(i => i.value),"
              " main: document.querySelector('[data-testid=stMain]')?.innerText.slice(0, 1500)})")


async def page_state(page) -> dict:
    return await page.evaluate(PAGE_STATE)


async def go_to(page, link: str, ready: str) -> None:
    """Switch page inside the session (the top navigation: same websocket, same replica)."""
    await page.locator("[data-testid=stTopNavLink]", has_text=link).click()
    await page.wait_for_function(ready)
    await page.wait_for_selector(IDLE)


UPLOADER_SHOWN = "() => !!document.querySelector('[data-testid=stFileUploader] input[type=file]')"


def digit_png(digit: np.ndarray) -> bytes:
    """An MNIST test digit as a 112x112 scan, dark ink on white (as the tests upload)."""
    big = np.asarray(Image.fromarray((np.asarray(digit) * 255).astype(np.uint8)).resize((112, 112), Image.BILINEAR))
    buffer = io.BytesIO()
    Image.fromarray(255 - big).save(buffer, format="PNG")
    return buffer.getvalue()
