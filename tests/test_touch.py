"""A finger is a first-class hand: on a 390x844 phone screen, with touch events only (Chrome's
DevTools protocol, no mouse), a finger held on the map decodes under it without panning, the
image stays in view, and the pad and the scrubber follow a finger. At 1280x720 the map's plot
is in view as the page opens."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from harness.browser import streamlit_server
from harness.pages import IDLE

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def server_and_log(tmp_path_factory):
    log = tmp_path_factory.mktemp("touch") / "streamlit.log"
    with streamlit_server(log) as (url, _):
        yield url, log


@pytest.fixture
def server(server_and_log):
    return server_and_log[0]


@pytest.fixture
def phone(chromium):
    context = chromium.new_context(viewport=PHONE, has_touch=True, is_mobile=True, device_scale_factor=2)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.console_lines = []  # What the page said, for the report of a page that never drew.
    page.on("console", lambda message: page.console_lines.append(f"{message.type}: {message.text}"))
    yield page, context.new_cdp_session(page)
    context.close()


def _open(page, url: str, ready: str, log) -> None:
    """Open ``url`` and wait for the element ``ready``; a page that never draws it is reported
    with its text, its console and the end of the server's log."""
    page.goto(url)
    try:
        page.wait_for_selector(ready)
    except Exception as error:
        raise AssertionError(f"{url} showed no {ready}. The page said: {page.inner_text('body')[:1500]!r}. "
                             f"Its console: {page.console_lines[-20:]}. "
                             f"The server's log ends: {log.read_text()[-3000:]}") from error


def _touch(cdp, kind: str, x: float | None = None, y: float | None = None) -> None:
    points = [] if kind in ("touchEnd", "touchCancel") else [{"x": x, "y": y}]
    cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})


def _painted(canvas) -> np.ndarray:
    rgba = canvas.evaluate("(c) => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data)")
    return np.asarray(rgba, dtype=np.int64).reshape(28, 28, 4)[..., 0]


def _keras_grey(model, z) -> np.ndarray:
    return np.round(model.decode(np.array([z], dtype=np.float32))[0, ..., 0] * 255).astype(np.int64)


def _settled_plot(page) -> dict:
    """The plot area once the page has sized the chart to the screen (two reads agree)."""
    before = None
    for _ in range(100):
        now = page.evaluate(PLOT)
        if now is not None and now == before:
            return now
        before = now
        page.wait_for_timeout(300)
    raise AssertionError(f"the map never settled: {before}")


def _in_view(box: dict, viewport: dict) -> bool:
    return (box is not None and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= viewport["width"]
            and box["y"] + box["height"] <= viewport["height"])


PLOT = """() => { const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');
    if (!gd || !gd._fullLayout || !gd._fullLayout.xaxis._length) return null;
    const box = gd.getBoundingClientRect(), x = gd._fullLayout.xaxis, y = gd._fullLayout.yaxis;
    return {left: box.left + x._offset, top: box.top + y._offset, width: x._length, height: y._length,
            xrange: x.range.slice(), yrange: y.range.slice(), points: Number(gd.dataset.points || 0)}; }"""


TOOLBAR_AND_TITLE = """() => { const chart = document.querySelector('.st-key-map_chart');
    const edges = e => { const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
    const bar = chart.querySelector('.modebar'), title = chart.querySelector('.legendtitletext');
    const [left, top, right, bottom] = edges(bar);
    return {bar: edges(bar), title: edges(title),
            bar_on_top: bar.contains(document.elementFromPoint((left + right) / 2, (top + bottom) / 2))}; }"""


def test_a_finger_on_the_map_decodes_under_it_without_panning_and_the_image_stays_in_view(phone, server):
    import ae_core

    model = ae_core.load_autoencoder(2)
    page, cdp = phone
    page.goto(f"{server}/map")
    page.wait_for_function(f"() => {{ const p = ({PLOT})(); return p && p.points === 10000; }}")
    hover = page.locator(".st-key-live_map_hover canvas.digit")  # In the view's shadow root.
    page.wait_for_function("(c) => !!c.dataset.frames", arg=hover.element_handle())
    area = _settled_plot(page)
    # Equal units, fitted to the data: the square of [-5.5, 5.5] on both axes, not a tall strip.
    assert area["yrange"] == pytest.approx(area["xrange"]) and abs(area["width"] - area["height"]) <= 2, area
    assert _in_view({"x": area["left"], "y": area["top"], "width": area["width"], "height": area["height"]}, PHONE)
    # Plotly's toolbar, as wide as the phone, sits above the chart: not over the legend's
    # title, and not clipped away (the point at its middle is the toolbar's own).
    boxes = page.evaluate(TOOLBAR_AND_TITLE)
    title, bar = boxes["title"], boxes["bar"]
    assert title[2] <= bar[0] or bar[2] <= title[0] or title[3] <= bar[1] or bar[3] <= title[1], boxes
    assert boxes["bar_on_top"], boxes

    inset = page.locator(".st-key-map_chart canvas.digit-inset")
    rng = np.random.default_rng(3)
    fractions = rng.uniform(0.05, 0.95, size=(21, 2))
    _touch(cdp, "touchStart", area["left"] + fractions[0, 0] * area["width"], area["top"] + fractions[0, 1] * area["height"])
    changed, previous = 0, None
    for fx, fy in fractions[1:]:
        area = page.evaluate(PLOT)  # Where the plot is now, should the page above it have moved.
        _touch(cdp, "touchMove", area["left"] + fx * area["width"], area["top"] + fy * area["height"])
        # The code under the finger, from the axes' ranges: the pixel arithmetic done here.
        z = (area["xrange"][0] + fx * (area["xrange"][1] - area["xrange"][0]),
             area["yrange"][1] - fy * (area["yrange"][1] - area["yrange"][0]))
        try:
            page.wait_for_function("([c, z]) => { const s = JSON.parse(c.dataset.z || 'null');"
                                   " return s && Math.abs(s[0] - z[0]) < 0.05 && Math.abs(s[1] - z[1]) < 0.05; }",
                                   arg=[inset.element_handle(), list(z)], polling="raf", timeout=3000)
        except Exception:
            continue  # Not drawn for this move: counted as unchanged.
        assert _in_view(inset.bounding_box(), PHONE), "the image under the finger is out of view"
        shown = np.asarray(json.loads(inset.get_attribute("data-z")))
        painted = _painted(inset)
        assert np.abs(painted - _keras_grey(model, shown)).max() <= 1, f"at {shown}"
        changed += previous is None or not np.array_equal(painted, previous)
        previous = painted
    _touch(cdp, "touchEnd")
    assert changed >= 18, f"{changed} of 20 finger moves changed the image in view"
    after = page.evaluate(PLOT)
    area = page.evaluate(PLOT) if area is None else area
    assert after["xrange"] == area["xrange"] and after["yrange"] == area["yrange"], "one finger panned the map"


def _pad_point(box: dict, z: tuple[float, float]) -> tuple[float, float]:
    """Page pixels of a code on the pad (ui/live/pad.js: a 276-pixel plot at (34, 8) of 320)."""
    scale = box["width"] / 320
    return (box["x"] + (34 + (z[0] + 5) / 10 * 276) * scale, box["y"] + (8 + (5 - z[1]) / 10 * 276) * scale)


def test_the_pad_and_the_scrubber_follow_a_finger_with_their_image_in_view(phone, server_and_log):
    import ae_core

    model = ae_core.load_autoencoder(2)
    page, cdp = phone
    server, log = server_and_log
    _open(page, f"{server}/sliders", ".st-key-live_pad canvas.digit", log)
    pad = page.locator(".st-key-live_pad canvas.pad")
    digit = page.locator(".st-key-live_pad canvas.digit")
    page.wait_for_function("(c) => !!c.dataset.z", arg=digit.element_handle())
    pad.evaluate("(e) => e.scrollIntoView({block: 'center'})")
    box = pad.bounding_box()
    _touch(cdp, "touchStart", *_pad_point(box, (-3.0, 3.0)))
    for step in range(1, 11):
        z = (-3.0 + step * 0.5, 3.0 - step * 0.4)
        _touch(cdp, "touchMove", *_pad_point(box, z))
        page.wait_for_function("([c, z]) => { const s = JSON.parse(c.dataset.z);"
                               " return Math.abs(s[0] - z[0]) < 0.05 && Math.abs(s[1] - z[1]) < 0.05; }",
                               arg=[digit.element_handle(), list(z)], polling="raf")
        assert _in_view(digit.bounding_box(), PHONE), "the pad's image is out of view while the finger drags"
        shown = np.asarray(json.loads(digit.get_attribute("data-z")))
        assert np.abs(_painted(digit) - _keras_grey(model, shown)).max() <= 1
    _touch(cdp, "touchEnd")
    # The release sets the sliders and the link, to the sliders' step nearest the finger.
    page.wait_for_url(lambda url: "z1=" in url and "z2=" in url)
    link = parse_qs(urlsplit(page.url).query)
    assert abs(float(link["z1"][0]) - 2.0) <= 0.1 and abs(float(link["z2"][0]) + 1.0) <= 0.1, page.url

    _open(page, f"{server}/paths?a=5&b=17", ".st-key-live_scrubber canvas.digit", log)
    track = page.locator(".st-key-live_scrubber canvas.track")
    image = page.locator(".st-key-live_scrubber canvas.digit")
    page.wait_for_function("(c) => !!c.dataset.code", arg=image.element_handle())
    image.evaluate("(e) => e.scrollIntoView({block: 'center'})")  # The row, as a reader scrolls to it.
    box = track.bounding_box()
    scale, codes = box["width"] / 480, []
    _touch(cdp, "touchStart", box["x"] + 22 * scale, box["y"] + box["height"] / 2)
    for fraction in (0.2, 0.4, 0.6, 0.8, 1.0):
        before = image.get_attribute("data-code")
        _touch(cdp, "touchMove", box["x"] + (22 + fraction * 436) * scale, box["y"] + box["height"] / 2)
        page.wait_for_function("([c, before]) => c.dataset.code !== before",
                               arg=[image.element_handle(), before], polling="raf")
        assert _in_view(image.bounding_box(), PHONE), "the scrubber's image is out of view"
        code = np.asarray(json.loads(image.get_attribute("data-code")))
        assert np.abs(_painted(image) - _keras_grey(model, code)).max() <= 1
        codes.append(code)
    _touch(cdp, "touchEnd")
    assert len({tuple(np.round(code, 4)) for code in codes}) == 5  # Each move morphed further.


def test_at_1280_by_720_the_maps_plot_is_in_view_as_the_page_opens(chromium, server):
    page = chromium.new_page(viewport={"width": 1280, "height": 720})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{server}/map")
    page.wait_for_function(f"() => {{ const p = ({PLOT})(); return p && p.points === 10000; }}")
    page.wait_for_selector(IDLE)
    area = _settled_plot(page)
    assert page.evaluate("() => window.scrollY") == 0
    assert _in_view({"x": area["left"], "y": area["top"], "width": area["width"], "height": area["height"]},
                    {"width": 1280, "height": 720}), area
    assert area["width"] >= 300 and abs(area["width"] - area["height"]) <= 2, area
    page.close()
