"""A page view costs the server little: what never changes travels once, over HTTP.

Through ``harness.protocol`` (the websocket, no browser): five sessions open the map at once,
each view small and each map whole (its 10,000 points counted from the points asset the
view names and the figure's empty traces that take them); every other page small too, and
the map in each colouring and background at its largest density, whose drift map is an asset
holding the model's own re-encoding drift. Then the asset route itself, and in Chromium, a
reload that fetches no weights again while the hover still decodes as Keras does, and the
drift map's values put into its heatmap.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import numpy as np
import pytest

from ae_core import framing
from harness.browser import streamlit_server
from harness.protocol import Run, Session

pytestmark = pytest.mark.slow

VIEW_BUDGET = 60_000  # Bytes over the websocket for one warm page view.
PAGES = ("map", "grid", "sliders", "upload", "paths", "train")
SESSIONS = 5


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("capacity") / "streamlit.log") as (url, _):
        yield url


def _settings(run: Run, component: str) -> dict:
    """The settings a live view (ui/live.py) was drawn with, from its element's bytes."""
    [element] = [element for element in run.elements("bidi_component")
                 if element.bidi_component.component_name.endswith(component)]
    return framing.unpack(element.bidi_component.bytes)[0]


def _get(url: str, headers: dict | None = None):
    """(status, headers (case-insensitive), body) of a GET."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _points_on_the_map(app_url: str, run: Run) -> np.ndarray:
    """The test indices the map of ``run`` shows once the browser has filled it: each empty
    point trace of the figure takes the points its ``meta`` names from the points asset."""
    from ae_core.store import read_points

    status, _, body = _get(f"{app_url}/{_settings(run, 'latent_map_points')['points']}")
    assert status == 200
    points = read_points(body)
    [chart] = run.elements("plotly_chart")
    shown = []
    for trace in json.loads(chart.plotly_chart.spec)["data"]:
        if "meta" not in trace:
            continue
        assert trace["x"] in ([], [None]) and trace["customdata"] in ([], [None])  # No points of its own.
        which = trace["meta"]["points"]
        shown.append(points["index"] if which == "all" else points["index"][points["label"] == which])
    return np.concatenate(shown)


def test_five_sessions_at_once_each_get_the_whole_map_in_a_small_view(app_url):
    with Session(app_url) as first:
        first.open("map")  # The server's first view computes or reads what every view shares.
    runs: list[Run] = []
    errors: list[BaseException] = []

    def open_map():
        try:
            with Session(app_url) as session:
                runs.append(session.open("map"))
        except BaseException as error:  # Reported below, not lost in the thread.
            errors.append(error)

    threads = [threading.Thread(target=open_map) for _ in range(SESSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not errors and len(runs) == SESSIONS, errors
    for run in runs:
        assert run.exceptions() == []
        assert run.bytes <= VIEW_BUDGET, run.bytes
        indices = _points_on_the_map(app_url, run)
        assert sorted(indices.tolist()) == list(range(10_000))  # Every test image, once.


@pytest.mark.parametrize("page", PAGES)
def test_every_pages_warm_view_is_small(app_url, page):
    with Session(app_url) as session:
        session.open(page)
    with Session(app_url) as session:
        run = session.open(page)
    assert run.exceptions() == []
    assert run.bytes <= VIEW_BUDGET, f"{page}: {run.bytes} bytes"


# The map's figure grows with the density only over the drift map (its cells); the
# largest density is therefore the worst case of each colouring and background.
@pytest.mark.parametrize("colour", ["label", "error"])
@pytest.mark.parametrize("background", ["none", "digits", "drift"])
def test_every_maps_warm_view_is_small_at_the_largest_density(app_url, colour, background):
    query = f"colour={colour}&background={background}&density=40&opacity=1.0"
    with Session(app_url) as session:
        session.open("map", query)
    with Session(app_url) as session:
        run = session.open("map", query)
    assert run.exceptions() == []
    assert run.bytes <= VIEW_BUDGET, f"{query}: {run.bytes} bytes"
    # The view is the one asked for, not the default map.
    figure = _map_figure(run)
    assert [trace["type"] == "heatmap" for trace in figure["data"]].count(True) == (background == "drift")
    assert len(figure["layout"].get("images", [])) == (background == "digits")
    assert any(trace.get("meta") == {"points": "all"} for trace in figure["data"]) == (colour == "error")


def _map_figure(run: Run) -> dict:
    [chart] = run.elements("plotly_chart")
    return json.loads(chart.plotly_chart.spec)


def test_the_drift_values_the_map_shows_are_the_models_re_encoding_drift(app_url):
    import ae_core
    from ae_core.explore import reencoding_drift

    from test_app_views import _array

    with Session(app_url) as session:
        run = session.open("map", "background=drift&density=40")
        [heatmap] = [trace for trace in _map_figure(run)["data"] if trace["type"] == "heatmap"]
        values = np.frombuffer(session.fetch(heatmap["meta"]["field"]), dtype="<f4")
    drift, z1_values, z2_values = reencoding_drift(ae_core.load_autoencoder(2), 80)
    shown = values.reshape(len(_array(heatmap["y"])), len(_array(heatmap["x"])))
    assert np.allclose(_array(heatmap["x"]), z1_values) and np.allclose(_array(heatmap["y"]), z2_values)
    assert np.abs(shown - drift).max() <= 1e-4  # float32, as sent; TensorFlow's sums may differ in the last bits.
    assert heatmap["zmin"] == 0.0 and heatmap["zmax"] == pytest.approx(float(drift.max()), abs=1e-4)


def test_a_slider_release_re_sends_no_weights(app_url):
    with Session(app_url) as session:
        view = session.open("sliders")
        moved = session.set_value(view.widget("slider", "z1"), 1.5)
    assert moved.exceptions() == [] and _settings(moved, "latent_pad")["z"] == [1.5, 0.0]
    assert moved.bytes < 25_000, moved.bytes  # Before: the 264 kB decoder and the raster, each time.


# --- The asset route ---------------------------------------------------------------------------

def test_an_asset_is_its_hash_kept_for_a_year_and_a_304_when_unchanged(app_url):
    with Session(app_url) as session:
        url = f"{app_url}/{_settings(session.open('map'), 'latent_map_hover')['decoder']}"
    status, headers, body = _get(url)
    name = url.rsplit("/", 1)[1]
    assert status == 200 and hashlib.sha256(body).hexdigest()[:32] == name.split(".")[0]
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    status, again, body = _get(url, {"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b"" and again["ETag"] == headers["ETag"]
    status, _, _ = _get(url, {"If-None-Match": '"something-else"'})
    assert status == 200


def _raw_get(app_url: str, path: str) -> tuple[int, bytes]:
    """GET ``path`` sent exactly as written: no client-side clean-up of "..", no quoting."""
    parts = urlsplit(app_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("name", [
    "0" * 32 + ".bin",  # Well formed, but no such asset.
    "A" * 32 + ".bin",  # Upper-case hex is not a name the store gives.
    "0" * 32 + ".py",
    "0" * 31 + ".bin",
    "..%2Fweights%2Fautoencoder_mnist_z2.json",  # One path segment that decodes to "../…".
    "%2e%2e%2fapp.py",
])
def test_an_unknown_or_malformed_asset_name_is_not_found(app_url, name):
    status, body = _raw_get(app_url, f"/assets/{name}")
    # Streamlit's own guard refuses some of these with 400 before the route sees them.
    assert status in (404, 400) and body in (b"No such asset.", b"Bad Request"), (name, status, body[:80])
    status, _ = _raw_get(app_url, "/assets/" + "0" * 32 + ".bin")
    assert status == 404  # What reaches the route and is not an asset is "not found".


def test_no_path_leaves_the_assets_folder(app_url):
    for path in ("/assets/../weights/autoencoder_mnist_z2.json", "/assets/../../app.py",
                 "/assets/%2e%2e/%2e%2e/app.py", "/assets//etc/passwd"):
        status, body = _raw_get(app_url, path)
        # Refused, or (for "//…", which is no asset name) Streamlit's own page, never the file.
        assert status in (400, 404) or b'<div id="root"></div>' in body, (path, status)
        assert b'"sha256"' not in body and b"import streamlit" not in body and b"root:" not in body


# --- In the browser ----------------------------------------------------------------------------

@pytest.mark.browser
def test_a_reload_fetches_no_weights_again_and_the_hover_still_decodes_as_keras(app_url, chromium):
    import ae_core
    from ae_core.export import decoder_bundle

    from test_live import DECODER_JS, DECODE_IN_PAGE, _keras_grey, _painted, _plot_area

    model = ae_core.load_autoencoder(2)
    page = chromium.new_context(viewport={"width": 1400, "height": 1300}).new_page()
    page.set_default_timeout(90_000)
    # Chromium's own record of each response: from its cache or the network, status, bytes.
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    responses: dict[str, dict] = {}
    received: dict[str, int] = {}
    network.on("Network.responseReceived", lambda event: responses.update({event["requestId"]: event["response"]}))
    network.on("Network.loadingFinished",
               lambda event: received.update({event["requestId"]: event["encodedDataLength"]}))
    points_drawn = ("() => { const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');"
                    " return gd && gd.dataset.points === '10000' && gd._fullLayout.xaxis._length > 0; }")

    def decoder_responses() -> list[tuple[dict, int]]:
        return [(response, received.get(request_id, 0)) for request_id, response in responses.items()
                if response["url"].endswith(decoder_name)]

    canvas = page.locator(".st-key-live_map_hover canvas.digit")
    page.goto(f"{app_url}/map")
    page.wait_for_function(points_drawn)
    # The decoder comes after the points: wait until the view holds it, so that its response is in.
    page.wait_for_function("(c) => c.dataset.frames !== undefined", arg=canvas.element_handle())
    with Session(app_url) as session:
        decoder_name = _settings(session.open("map"), "latent_map_hover")["decoder"].rsplit("/", 1)[1]
    page.wait_for_function("() => true")  # One round trip: Chromium's events of that response are in.
    first = decoder_responses()
    assert [response["status"] for response, _ in first] == [200]
    bundle_size = len(decoder_bundle(model))
    assert first[0][1] > 0.3 * bundle_size  # It came over the network, compressed or not.

    responses.clear()
    received.clear()
    page.reload()
    page.wait_for_function(points_drawn)
    area = _plot_area(page, "map_chart")
    page.wait_for_function("(c) => c.dataset.frames !== undefined", arg=canvas.element_handle())  # Decoder ready.
    page.mouse.move(area["left"] + 0.3 * area["width"], area["top"] + 0.6 * area["height"])
    page.wait_for_function("(c) => Number(c.dataset.frames) > 0", arg=canvas.element_handle())
    again = decoder_responses()
    assert again, "the page asked for no decoder at all"
    for response, size in again:  # The browser's cache, or a 304 with no body.
        assert response.get("fromDiskCache") or response.get("fromMemoryCache") or response["status"] == 304, response
        assert size < 2_000, size

    shown_z = np.asarray(json.loads(canvas.get_attribute("data-z")))
    assert np.abs(_painted(canvas) - _keras_grey(model, shown_z)).max() <= 1
    # And the bytes the page holds decode as Keras does, within 1e-5, on 50 random codes.
    codes = np.random.default_rng(3).uniform(-5, 5, size=(50, 2)).astype(np.float32)
    page.add_script_tag(content=DECODER_JS)
    held = page.evaluate("async (url) => { const r = await fetch(url);"
                         " const b = new Uint8Array(await r.arrayBuffer());"
                         " let s = ''; for (const x of b) s += String.fromCharCode(x); return btoa(s); }",
                         f"assets/{decoder_name}")
    decoded = np.asarray(page.evaluate(DECODE_IN_PAGE, [held, codes.tolist()]))
    assert np.abs(decoded - model.decode(codes).reshape(50, 784)).max() <= 1e-5
    page.close()


@pytest.mark.browser
def test_the_browser_puts_the_drift_values_into_the_heatmap_and_the_hover_still_decodes(app_url, chromium):
    import ae_core

    from test_live import _keras_grey, _painted, _plot_area

    with Session(app_url) as session:
        run = session.open("map", "background=drift&density=10")
        [heatmap] = [trace for trace in _map_figure(run)["data"] if trace["type"] == "heatmap"]
        sent = np.frombuffer(session.fetch(heatmap["meta"]["field"]), dtype="<f4").reshape(20, 20)
    page = chromium.new_context(viewport={"width": 1400, "height": 1300}).new_page()
    page.set_default_timeout(90_000)
    page.goto(f"{app_url}/map?background=drift&density=10")
    held = page.wait_for_function(
        "() => { const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');"
        " const heatmap = gd && gd.data && gd.data.find((trace) => trace.type === 'heatmap');"
        " return heatmap && heatmap.z.length === 20 && gd.dataset.points === '10000'"
        " && heatmap.z.map((row) => Array.from(row)); }").json_value()
    assert np.array_equal(np.asarray(held, dtype=np.float32), sent)
    canvas = page.locator(".st-key-live_map_hover canvas.digit")
    page.wait_for_function("(c) => c.dataset.frames !== undefined", arg=canvas.element_handle())
    area = _plot_area(page, "map_chart")
    page.mouse.move(area["left"] + 0.3 * area["width"], area["top"] + 0.6 * area["height"])
    page.wait_for_function("(c) => Number(c.dataset.frames) > 0", arg=canvas.element_handle())
    # Over the drift map, the pointer still shows what the decoder draws there.
    shown_z = np.asarray(json.loads(canvas.get_attribute("data-z")))
    assert np.abs(_painted(canvas) - _keras_grey(ae_core.load_autoencoder(2), shown_z)).max() <= 1
    page.close()
