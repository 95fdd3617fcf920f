"""Many users at once: ten browser sessions against one real server, each checking its own
pixels; and the shared model called from many threads. Bounded in time and count."""

from __future__ import annotations

import asyncio
import io
import threading

import numpy as np
import pytest
from PIL import Image

from harness.browser import PICK_ISOLATED_POINT, launch_chromium_async, streamlit_server
from corpus import digit_on_paper, encode

SESSIONS = 10
DEADLINE_SECONDS = 240


def test_model_calls_from_many_threads_match_serial_calls():
    import ae_core

    model = ae_core.load_autoencoder(2)
    codes = np.random.default_rng(0).uniform(-5, 5, size=(64, 1, 2)).astype(np.float32)
    expected = [model.decode(code) for code in codes]
    results = [None] * len(codes)

    def work(index: int) -> None:
        for _ in range(5):
            results[index] = model.decode(codes[index])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(codes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(np.array_equal(result, want) for result, want in zip(results, expected))


async def _image_pixels(page, selector_caption: str) -> np.ndarray:
    """Download the <img> whose caption starts with ``selector_caption`` and decode it."""
    src = await page.evaluate(
        "(caption) => { for (const box of document.querySelectorAll('[data-testid=stImage]')) {"
        " const text = box.innerText || ''; if (text.trim().startsWith(caption)) return box.querySelector('img').src; }"
        " return null; }", selector_caption)
    assert src, f"no image captioned {selector_caption!r}"
    response = await page.request.get(src)
    return np.asarray(Image.open(io.BytesIO(await response.body())).convert("L"))


async def _session(browser, url: str, number: int, model, digits) -> dict:
    from ae_core import image_to_mnist
    from ui.images import enlarge

    page = await browser.new_page(viewport={"width": 1500, "height": 1000})
    page.set_default_timeout(120_000)
    idle = "[data-test-script-state=notRunning]"
    # 1. Sliders: session `number` moves z1 to 0.05 * (number + 1); its pad draws that point.
    await page.goto(f"{url}/sliders")
    await page.wait_for_selector(idle)
    await page.locator("[data-testid=stSlider] input[type=range]").first.focus()
    for _ in range(number + 1):
        await page.keyboard.press("ArrowRight")
    z1 = round(0.05 * (number + 1), 2)
    canvas = page.locator(".st-key-live_pad canvas.digit")
    await page.wait_for_function("([c, z1]) => { const z = JSON.parse(c.dataset.z || 'null');"
                                 " return z && Math.abs(z[0] - z1) < 1e-9 && z[1] === 0; }",
                                 arg=[await canvas.element_handle(), z1])
    rgba = await canvas.evaluate("(c) => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data)")
    shown = np.asarray(rgba).reshape(28, 28, 4)[..., 0]
    expected = np.round(model.decode(np.array([[z1, 0.0]], dtype=np.float32))[0, ..., 0] * 255)
    assert np.abs(shown - expected).max() <= 1, f"session {number} pad"

    # 2. Map: click a point chosen per session.
    await page.goto(f"{url}/map")
    await page.wait_for_function("() => { const gd = document.querySelector('.js-plotly-plot');"
                                 " return gd && gd._fullData && gd._fullData.length >= 10; }")
    await page.wait_for_selector(idle)
    target = await page.evaluate(PICK_ISOLATED_POINT.replace("k += 37", f"k += {37 + 11 * number}"), [6])
    await page.mouse.move(target["px"], target["py"])
    await page.wait_for_timeout(300)
    await page.mouse.click(target["px"], target["py"])
    await page.get_by_text(f"Test image #{target['index']} ").wait_for()
    await page.wait_for_selector(idle)

    # 3. Upload: session `number` uploads its own digit.
    await page.goto(f"{url}/upload")
    data = encode(digit_on_paper(digits[number]), "PNG")
    await page.locator("[data-testid=stFileUploader] input[type=file]").set_input_files(
        files=[{"name": f"digit{number}.png", "mimeType": "image/png", "buffer": data}])
    await page.get_by_text("2-D reconstruction").wait_for()
    await page.wait_for_selector(idle)
    prepared = await _image_pixels(page, "your digit, prepared")
    assert np.array_equal(prepared, enlarge(image_to_mnist(data), 5)), f"session {number} upload"
    errors = await page.locator("[data-testid=stException]").count()
    await page.close()
    return {"session": number, "index": target["index"], "exceptions": errors}


@pytest.mark.slow
@pytest.mark.browser
def test_ten_sessions_at_once(tmp_path, test_set):
    from playwright.async_api import async_playwright

    import ae_core

    model = ae_core.load_autoencoder(2)
    images, _ = test_set
    digits = images[:SESSIONS, ..., 0]

    async def run(url: str) -> list:
        async with async_playwright() as playwright:
            browser = await launch_chromium_async(playwright)
            try:
                return await asyncio.wait_for(
                    asyncio.gather(*[_session(browser, url, n, model, digits) for n in range(SESSIONS)]),
                    timeout=DEADLINE_SECONDS)
            finally:
                await browser.close()

    with streamlit_server(tmp_path / "streamlit.log") as (url, process):
        results = asyncio.run(run(url))
        assert process.poll() is None, "the server must still be serving"
    log = (tmp_path / "streamlit.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    assert len(results) == SESSIONS and all(r["exceptions"] == 0 for r in results)

