"""Views that decode in the browser, once per animation frame: the map's hover, the
sliders page's pad and the paths page's scrubber.

Each is an ``st.components.v2`` component. Its data is a few hundred bytes: a 4-byte
length and the view's settings as JSON. What does not change with the view, the decoder
(``ae_core.export.decoder_bundle``), the map's points and the pad's raster, the browser
fetches once from immutable asset URLs (``ui/assets.py``) and keeps, so a rerun re-sends no
weights. The JavaScript in ``ui/live/`` is plain: no library is fetched or shipped, so a
server on a closed network works; each view's script is an asset too (``loader.js``). A browser that cannot decode (a script error, or a
decoder that does not reproduce Keras's check image) shows one line and reports it in
``result.failed``, and the pages then draw their images on the server as before.

``map_points`` fills a latent map's empty point traces (``ui/figures.py``) from the points
asset, so the figure on the websocket is a few kB instead of 170.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from ae_core import framing, store
from ae_core.config import WINDOW

from . import assets, links, state
from .frame import PHONE_WIDTH

SCRIPTS = Path(__file__).parent / "live"
# Every view's module begins with the decoder and the helpers all views share.
_PRELUDE = "\n".join((SCRIPTS / name).read_text() for name in ("decoder.js", "common.js"))

_CSS = """
.live { display: flex; flex-direction: column; align-items: flex-start; gap: 0.4rem; }
.digit { width: 168px; height: 168px; image-rendering: pixelated; background: black; border-radius: 4px; }
.readout { font-size: 0.875rem; opacity: 0.8; min-height: 1.3em; }
.failure { font-size: 0.875rem; color: #9a6700; margin: 0; }
.pad-row, .scrub-row { display: flex; flex-wrap: wrap; align-items: center; gap: 1.5rem; }
.pad { width: 320px; height: 320px; cursor: crosshair; touch-action: none; }
.scrub { display: flex; flex-direction: column; gap: 0.3rem; flex: 0 1 480px; }
.track { width: 100%; max-width: 480px; cursor: ew-resize; touch-action: none; }
.pad:focus-visible, .track:focus-visible { outline: 2px solid #ff4b4b; outline-offset: 2px; }
/* On a phone the image stays beside the pad and the scrubber, in view while a finger drags. */
@media (max-width: PHONE_WIDTHpx) {
  .pad-row, .scrub-row { flex-wrap: nowrap; gap: 0.75rem; }
  .pad { width: min(320px, 60vw); height: min(320px, 60vw); }
  .scrub-row .digit, .pad-row .digit { width: 96px; height: 96px; }
}
""".replace("PHONE_WIDTH", str(PHONE_WIDTH))


def _component(name: str, script: str):
    """The component whose script is ``script`` after the prelude, served as an asset: the
    element itself holds only ``loader.js``, which imports it."""
    module = store.put_asset((_PRELUDE + (SCRIPTS / script).read_text()).encode(), "js")
    loader = (SCRIPTS / "loader.js").read_text().replace("MODULE_URL", assets.url(module))
    return st.components.v2.component(name, js=loader, css=_CSS, isolate_styles=True)


_map_hover = _component("latent_map_hover", "map_hover.js")
_pad = _component("latent_pad", "pad.js")
_scrubber = _component("latent_scrubber", "scrubber.js")
_map_points = _component("latent_map_points", "map_points.js")


def envelope(settings: dict) -> bytes:
    """A view's data: its settings, as a header in ``ae_core.framing``'s layout."""
    return framing.pack(settings)


def _decoder_url(choice: state.Choice) -> str:
    return assets.url(state.decoder_asset(choice))


def _ignore() -> None:
    """A callback that only registers the state name; the value is read from the result."""


def map_hover(choice: state.Choice, chart_key: str, ring: tuple[float, float] | None = None):
    """The digit decoded under the pointer wherever it is over the chart keyed ``chart_key``,
    and a ring over the chart at the code ``ring``, above every trace.

    Returns the component's result; ``result.failed`` holds the reason when the browser
    could not decode.
    """
    settings = {"chart": chart_key, "ring": None if ring is None else [float(value) for value in ring],
                "decoder": _decoder_url(choice)}
    return _map_hover(key="live_map_hover", data=envelope(settings), on_failed_change=_ignore)


def map_points(choice: state.Choice, chart_key: str) -> None:
    """Fill the empty point traces of the latent map keyed ``chart_key`` in the browser."""
    settings = {"chart": chart_key, "points": assets.url(state.points_asset(choice)),
                "classes": list(choice.class_names)}
    _map_points(key=f"map_points_{chart_key}", data=envelope(settings))


def pad(choice: state.Choice, point: tuple[float, float], on_release: Callable[[], None]):
    """The 2-D pad over the small map; ``result.release`` is the point where it was let go.

    ``on_release`` runs before the rerun, so it may set the sliders' session state.
    """
    settings = {"z": [float(point[0]), float(point[1])], "window": list(WINDOW), "step": links.Z_STEP,
                "background": assets.url(state.raster_asset(choice)), "decoder": _decoder_url(choice)}
    return _pad(key="live_pad", data=envelope(settings), on_release_change=on_release,
                on_failed_change=_ignore)


def scrubber(choice: state.Choice, start: tuple[float, float], end: tuple[float, float]):
    """A handle on the segment from ``start`` to ``end`` and the digit decoded where it stands."""
    settings = {"a": [float(value) for value in start], "b": [float(value) for value in end], "t": 0.5,
                "decoder": _decoder_url(choice)}
    return _scrubber(key="live_scrubber", data=envelope(settings), on_failed_change=_ignore)
