"""Decoding in the browser, checked against Keras: the decoder itself on 100 random codes per
model, then the map's hover, the pad and the scrubber in a real `streamlit run` in Chromium,
the absence of server traffic while they move, and the fallback when a browser cannot decode."""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import pytest

from ae_core.config import WINDOW
from harness.browser import ROOT, streamlit_server
from harness.pages import IDLE

DECODER_JS = (ROOT / "ui" / "live" / "decoder.js").read_text()

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TIMEOUT_MS = 90_000

DECODE_IN_PAGE = """
([bundle, codes]) => {
  const bytes = Uint8Array.from(atob(bundle), (c) => c.charCodeAt(0));
  const decoder = createDecoder(bytes);
  decoder.selfCheck();
  return codes.map((z) => Array.from(decoder.decode(z)));
}
"""


def _browser_decode(page, model, codes: np.ndarray) -> np.ndarray:
    from ae_core.export import decoder_bundle

    bundle = base64.b64encode(decoder_bundle(model)).decode()
    return np.asarray(page.evaluate(DECODE_IN_PAGE, [bundle, codes.tolist()]), dtype=np.float64)


def test_the_browser_decodes_what_keras_decodes(chromium, quick_run):
    """100 random codes on each dataset's model and on a model trained in this test run."""
    import ae_core

    out_dir, _ = quick_run
    models = {"mnist": ae_core.load_autoencoder(2, "mnist"),
              "fashion_mnist": ae_core.load_autoencoder(2, "fashion_mnist"),
              "trained here": ae_core.Autoencoder.from_folder(out_dir, 2, "mnist")}
    page = chromium.new_page()
    page.add_script_tag(content=DECODER_JS)
    codes = np.random.default_rng(0).uniform(*WINDOW, size=(100, 2)).astype(np.float32)
    for name, model in models.items():
        expected = model.decode(codes).reshape(100, 784)
        decoded = _browser_decode(page, model, codes)
        assert np.abs(decoded - expected).max() <= 1e-5, name
        assert expected.std(axis=0).mean() > 0.01, f"{name}: the codes must draw different images"
    page.close()


def test_a_decoder_that_does_not_reproduce_keras_refuses_itself(chromium):
    import ae_core
    from ae_core import framing
    from ae_core.export import decoder_bundle

    bundle = bytearray(decoder_bundle(ae_core.load_autoencoder(2)))
    header, arrays_start = framing.unpack(bytes(bundle))
    start = arrays_start + header["arrays"]["conv2/bias"]["offset"]
    bundle[start:start + 4] = np.float32(3.0).tobytes()  # One bias off: every image changes.
    page = chromium.new_page()
    page.add_script_tag(content=DECODER_JS)
    error = page.evaluate("""(bundle) => {
        try { createDecoder(Uint8Array.from(atob(bundle), (c) => c.charCodeAt(0))).selfCheck(); return null; }
        catch (error) { return error.message; } }""", base64.b64encode(bytes(bundle)).decode())
    assert error and "off Keras's" in error
    page.close()


# --- In the app ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("live") / "streamlit.log") as (url, _):
        yield url


def _open(context, url: str, sent: list):
    """A page whose websocket frames to the server are timestamped into ``sent``."""
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("websocket", lambda socket: socket.on("framesent", lambda _: sent.append(time.monotonic())))
    page.goto(url)
    page.wait_for_selector(IDLE)
    return page


def _painted(canvas) -> np.ndarray:
    """The grey levels the live view painted on its 28x28 canvas."""
    rgba = canvas.evaluate("(c) => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data)")
    return np.asarray(rgba, dtype=np.int64).reshape(28, 28, 4)[..., 0]


def _keras_grey(model, z) -> np.ndarray:
    return np.round(model.decode(np.array([z], dtype=np.float32))[0, ..., 0] * 255).astype(np.int64)


def _plot_area(page, chart_key: str) -> dict:
    return page.evaluate(f"""() => {{
        const gd = document.querySelector('.st-key-{chart_key} .js-plotly-plot');
        const box = gd.getBoundingClientRect(), x = gd._fullLayout.xaxis, y = gd._fullLayout.yaxis;
        return {{left: box.left + x._offset, top: box.top + y._offset, width: x._length, height: y._length,
                 xrange: x.range, yrange: y.range}}; }}""")


def test_hovering_the_map_draws_the_decoders_image_under_the_pointer_without_the_server(
        chromium, server):
    import ae_core

    model = ae_core.load_autoencoder(2)
    sent: list[float] = []
    page = _open(chromium.new_context(viewport={"width": 1400, "height": 1300}), f"{server}/map", sent)
    page.wait_for_function("() => { const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');"
                           " return gd && gd._fullLayout && gd._fullLayout.xaxis._length > 0; }")
    canvas = page.locator(".st-key-live_map_hover canvas.digit")
    # The decoder arrives as an asset after the view: its frame counter starts once it has.
    page.wait_for_function("(c) => c.dataset.frames !== undefined", arg=canvas.element_handle())
    # Before the pointer moves (no image is chosen), it shows the decoder's image at the origin.
    page.wait_for_function("(c) => c.dataset.z === '[0,0]'", arg=canvas.element_handle())
    assert np.abs(_painted(canvas) - _keras_grey(model, (0.0, 0.0))).max() <= 1
    first_frame = int(canvas.get_attribute("data-frames"))
    started = time.monotonic()
    rng = np.random.default_rng(1)
    images = []
    for move in range(120):
        fx, fy = rng.uniform(0.02, 0.98, size=2)
        # Measured at each move: what arrives after the view (the points, the decoder) can
        # still move the chart on the page, later on a loaded machine.
        area = _plot_area(page, "map_chart")
        page.mouse.move(area["left"] + fx * area["width"], area["top"] + fy * area["height"])
        if move % 12 != 11:
            continue
        # Where the pointer is, in (z1, z2), from the axes' own ranges: the pixel arithmetic
        # done here, not the page's.
        z = (area["xrange"][0] + fx * (area["xrange"][1] - area["xrange"][0]),
             area["yrange"][1] - fy * (area["yrange"][1] - area["yrange"][0]))
        page.wait_for_function("([canvas, z]) => { const shown = JSON.parse(canvas.dataset.z || 'null');"
                               " return shown && Math.abs(shown[0] - z[0]) < 0.02 && Math.abs(shown[1] - z[1]) < 0.02; }",
                               arg=[canvas.element_handle(), list(z)], polling="raf")
        shown_z = np.asarray(json.loads(canvas.get_attribute("data-z")))
        painted = _painted(canvas)
        assert np.abs(painted - _keras_grey(model, shown_z)).max() <= 1, f"move {move} at {shown_z}"
        images.append(painted)
    hovered = time.monotonic()
    frames = int(canvas.get_attribute("data-frames")) - first_frame
    assert frames >= 60, frames  # Decoded as the pointer moved, not once at the end.
    assert len({image.tobytes() for image in images}) == len(images)  # Each stop drew another image.
    assert [t for t in sent if started <= t <= hovered] == []  # Not one message to the server.
    page.close()


def _ring(page) -> dict:
    """Where the chosen image's ring is drawn: its centre in page pixels and its code."""
    return page.evaluate("""() => { const ring = document.querySelector('svg.chosen-ring');
        if (!ring || ring.style.display === 'none' || !ring.dataset.z) return null;
        const box = ring.querySelector('circle').getBoundingClientRect();
        return {x: box.left + box.width / 2, y: box.top + box.height / 2, z: JSON.parse(ring.dataset.z)}; }""")


def _pixel_of(area: dict, z) -> tuple[float, float]:
    """Page pixels of a code, from the axes' ranges."""
    return (area["left"] + (z[0] - area["xrange"][0]) / (area["xrange"][1] - area["xrange"][0]) * area["width"],
            area["top"] + (area["yrange"][1] - z[1]) / (area["yrange"][1] - area["yrange"][0]) * area["height"])


def test_the_chosen_image_is_ringed_above_the_points_and_the_ring_follows_clicks_and_zoom(
        chromium, server, test_set):
    import ae_core
    from PIL import Image

    images, _ = test_set
    codes = ae_core.load_autoencoder(2).encode(images[[123]])
    page = _open(chromium.new_context(viewport={"width": 1400, "height": 1300}),
                 f"{server}/map?index=123&background=digits", [])
    page.wait_for_function("() => { const r = document.querySelector('svg.chosen-ring');"
                           " return r && r.dataset.z && r.style.display !== 'none'; }")
    # The ring follows the chart a frame later: while the page settles (the panel's images,
    # which wait for the test set, change its height and the chart's size) read both again.
    for _ in range(50):
        ring, area = _ring(page), _plot_area(page, "map_chart")
        if np.hypot(*np.subtract((ring["x"], ring["y"]), _pixel_of(area, ring["z"]))) <= 1.0:
            break
        page.wait_for_timeout(100)
    assert ring["z"] == pytest.approx(codes[0].tolist(), abs=1e-4)
    assert (ring["x"], ring["y"]) == pytest.approx(_pixel_of(area, codes[0]), abs=1.0)
    # Above the points and the background: on every ray from its centre, the page shows the
    # ring's black line (radius 10 to 12) inside its white halo (radius 8.5 to 13.5).
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("L"), dtype=np.int64)
    angles, radii = np.linspace(0, 2 * np.pi, 24, endpoint=False), np.arange(8.5, 14, 0.5)
    rays = shot[np.round(ring["y"] + np.outer(np.sin(angles), radii)).astype(int),
                np.round(ring["x"] + np.outer(np.cos(angles), radii)).astype(int)]
    assert rays.min(axis=1).max() <= 40 and rays.max(axis=1).min() >= 200, rays

    # A click on another point moves the ring there.
    from harness.browser import PICK_ISOLATED_POINT
    target = page.evaluate(PICK_ISOLATED_POINT, [6])
    page.mouse.move(target["px"], target["py"])
    page.wait_for_timeout(300)  # Plotly's hover must register first.
    page.mouse.click(target["px"], target["py"])
    page.wait_for_function("(index) => [...document.querySelectorAll('h3')].some("
                           "e => e.textContent.includes('Test image #' + index + ' '))", arg=target["index"])
    clicked = ae_core.load_autoencoder(2).encode(images[[target["index"]]])[0]
    page.wait_for_function("(z) => { const r = document.querySelector('svg.chosen-ring');"
                           " const shown = JSON.parse(r.dataset.z); return Math.abs(shown[0] - z[0]) < 1e-4; }",
                           arg=clicked.tolist())
    ring = _ring(page)
    assert (ring["x"], ring["y"]) == pytest.approx((target["px"], target["py"]), abs=1.0)

    # Zooming in about the plot's centre moves the point, and the ring with it.
    page.mouse.move(area["left"] + area["width"] / 2, area["top"] + area["height"] / 2)
    page.mouse.wheel(0, -400)
    page.wait_for_function("(range) => { const x = document.querySelector('.st-key-map_chart .js-plotly-plot')"
                           "._fullLayout.xaxis.range; return x[1] - x[0] < 0.95 * (range[1] - range[0]); }",
                           arg=area["xrange"])
    page.wait_for_timeout(200)  # The ring moves on the next frame.
    zoomed = _plot_area(page, "map_chart")
    ring = _ring(page)
    assert ring is not None and (ring["x"], ring["y"]) == pytest.approx(_pixel_of(zoomed, clicked), abs=1.0)
    assert np.hypot(ring["x"] - target["px"], ring["y"] - target["py"]) > 5  # It did move.
    page.close()


def _pad_point(box: dict, z: tuple[float, float]) -> tuple[float, float]:
    """Page pixels of a code on the pad (ui/live/pad.js: a 276-pixel plot at (34, 8) of 320)."""
    scale = box["width"] / 320
    return (box["x"] + (34 + (z[0] + 5) / 10 * 276) * scale, box["y"] + (8 + (5 - z[1]) / 10 * 276) * scale)


def test_the_pad_decodes_while_dragged_and_the_link_takes_the_point_on_release(chromium, server):
    import ae_core

    model = ae_core.load_autoencoder(2)
    sent: list[float] = []
    page = _open(chromium.new_context(viewport={"width": 1400, "height": 1300}),
                 f"{server}/sliders?z1=1.5&z2=-2", sent)
    canvas = page.locator(".st-key-live_pad canvas.digit")
    page.wait_for_function("(c) => c.dataset.z === '[1.5,-2]'", arg=canvas.element_handle())
    assert np.abs(_painted(canvas) - _keras_grey(model, (1.5, -2.0))).max() <= 1

    box = page.locator(".st-key-live_pad canvas.pad").bounding_box()
    page.mouse.move(*_pad_point(box, (-3.0, 3.0)))
    started = time.monotonic()
    page.mouse.down()
    for step in range(1, 31):
        page.mouse.move(*_pad_point(box, (-3.0 + step * 5 / 30, 3.0 - step * 4 / 30)))
    page.wait_for_function("(c) => { const z = JSON.parse(c.dataset.z); return Math.abs(z[0] - 2) < 0.05; }",
                           arg=canvas.element_handle(), polling="raf")
    dragged = time.monotonic()
    shown_z = np.asarray(json.loads(canvas.get_attribute("data-z")))
    assert np.abs(_painted(canvas) - _keras_grey(model, shown_z)).max() <= 1
    assert [t for t in sent if started <= t <= dragged] == []  # The drag stays in the browser.
    page.mouse.up()
    page.wait_for_url(lambda url: "z1=2" in url and "z2=-1" in url)  # Rounded to the sliders' step.

    # The arrow keys move the handle too, and the link follows once they rest.
    page.locator(".st-key-live_pad canvas.pad").focus()
    for _ in range(3):
        page.keyboard.press("ArrowUp")
    page.wait_for_url(lambda url: "z2=-0.7" in url)
    page.close()


def test_the_scrubber_morphs_from_one_end_to_the_other(chromium, server, test_set):
    import ae_core

    model = ae_core.load_autoencoder(2)
    images, _ = test_set
    ends = model.encode(images[[5, 17]])
    page = _open(chromium.new_context(viewport={"width": 1400, "height": 1300}), f"{server}/paths?a=5&b=17", [])
    track = page.locator(".st-key-live_scrubber canvas.track")
    canvas = page.locator(".st-key-live_scrubber canvas.digit")
    box = track.bounding_box()
    scale = box["width"] / 480
    for fraction, expected in [(0.0, ends[0]), (1.0, ends[1]), (0.25, 0.75 * ends[0] + 0.25 * ends[1])]:
        # The track runs from x=22 to x=458 of its 480 pixels (ui/live/scrubber.js).
        x = box["x"] + (22 + fraction * 436) * scale
        page.mouse.click(x, box["y"] + box["height"] / 2)
        page.wait_for_function("([c, z]) => { const shown = JSON.parse(c.dataset.code || 'null');"
                               " return shown && Math.abs(shown[0] - z[0]) < 1e-3 && Math.abs(shown[1] - z[1]) < 1e-3; }",
                               arg=[canvas.element_handle(), expected.tolist()], polling="raf")
        code = np.asarray(json.loads(canvas.get_attribute("data-code")))
        assert np.abs(_painted(canvas) - _keras_grey(model, code)).max() <= 1
    page.close()


def test_a_browser_that_cannot_decode_says_so_and_the_server_draws_instead(chromium, server):
    """Arithmetic that is off (here, a broken Math.exp) fails the decoder's check against Keras."""
    import ae_core
    from PIL import Image

    from ui.images import enlarge

    context = chromium.new_context(viewport={"width": 1400, "height": 1300})
    context.add_init_script("Math.exp = () => NaN;")
    page = _open(context, f"{server}/sliders?z1=1.5&z2=-2", [])
    page.get_by_text("Live decoding is off in this browser").wait_for()
    page.get_by_text("decoded at (1.50, -2.00)").wait_for()  # The server's image, as before.
    source = page.locator("[data-testid=stMain] [data-testid=stImage] img").first.get_attribute("src")
    shown = np.asarray(Image.open(io.BytesIO(page.request.get(source if source.startswith("http") else f"{server}{source}").body())))
    expected = enlarge(ae_core.load_autoencoder(2).decode(np.array([[1.5, -2.0]]))[0], 10)
    assert np.abs(shown.astype(int) - expected.astype(int)).max() <= 2
    page.close()
