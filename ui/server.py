"""The web server around Streamlit: the app's own routes, and a guard on each websocket.

``app.py`` hands both to ``st.App``, which Streamlit 1.67 serves with uvicorn and Starlette.

**Why a guard.** A browser sends a message over its websocket when a widget changes: a few a
second at most. Streamlit handles each message on the event loop that also answers every
other session and the health check, so one script sending thousands of reruns at once froze
a server for minutes (docs/security.md). Two things stop that:

* ``runner.fastReruns = false`` (``.streamlit/config.toml``): a rerun asked for while the
  script runs is handed to the running script, where a newer request replaces the pending
  one, instead of stopping the script and starting a new thread for every message.
* ``MessageRateLimit`` here: a socket may send ``BURST`` messages at once and
  ``MESSAGES_PER_SECOND`` after that; the first message past it closes the socket with code
  1008 (policy violation) and a reason that says why. Neither Streamlit nor uvicorn offers a
  per-socket message limit, and nginx's limits count connections, not the messages on one.

Frames over ``server.maxMessageSize`` (25 MB, ``.streamlit/config.toml``) are refused by
uvicorn from the frame's header, before its payload is read.

**Widget values of the wrong type.** A browser sends each widget's value in the field its
widget was declared with; a script can send any field, and Streamlit's own deserialisers
then raised in every page view of that session. ``guard_widget_states()`` drops such a
value before Streamlit reads it, as a bad link value is dropped, and the page names the
control in one line (``dropped_widget_notes``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

STREAM_PATH = "/_stcore/stream"
MESSAGES_PER_SECOND = 10.0
BURST = 40
CLOSE_CODE = 1008  # RFC 6455: policy violation.
CLOSE_REASON = f"Too many messages: at most {BURST} at once and {MESSAGES_PER_SECOND:g} a second."


class TokenBucket:
    """``take()`` is True while the caller stays within ``burst`` at once and ``rate`` a second.

    >>> bucket = TokenBucket(rate=1.0, burst=2, clock=iter([0.0, 0.0, 0.0, 0.0, 1.0]).__next__)
    >>> [bucket.take() for _ in range(4)]
    [True, True, False, True]
    """

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.last = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class MessageRateLimit:
    """ASGI middleware: close Streamlit's websocket when its client sends too fast.

    The app sees the close as the client leaving, so Streamlit ends the session as usual.
    """

    def __init__(self, app, rate: float = MESSAGES_PER_SECOND, burst: int = BURST):
        self.app, self.rate, self.burst = app, rate, burst

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket" or not scope["path"].endswith(STREAM_PATH):
            await self.app(scope, receive, send)
            return
        bucket = TokenBucket(self.rate, self.burst)
        closed = False

        async def limited_receive():
            nonlocal closed
            if closed:
                return {"type": "websocket.disconnect", "code": CLOSE_CODE}
            message = await receive()
            if message["type"] == "websocket.receive" and not bucket.take():
                closed = True
                await send({"type": "websocket.close", "code": CLOSE_CODE, "reason": CLOSE_REASON})
                return {"type": "websocket.disconnect", "code": CLOSE_CODE}
            return message

        async def guarded_send(message):
            if not closed:  # Streamlit's sender may still hold messages for a closed socket.
                await send(message)

        await self.app(scope, limited_receive, guarded_send)


def _plotly_chunk() -> str | None:
    """The path of Streamlit's plotly chunk beside its index.html, if this Streamlit has one."""
    import streamlit

    chunks = sorted((Path(streamlit.__file__).parent / "static" / "static" / "js").glob("PlotlyChart.*.js"))
    return f"./static/js/{chunks[0].name}" if len(chunks) == 1 else None


class PreloadPlotly:
    """ASGI middleware: the page's HTML asks the browser to fetch and compile plotly at once.

    Streamlit loads its 4.7 MB plotly chunk only when a chart's element arrives, after the
    page's script has run; compiling it was then the longest step before the first map
    (docs/performance.md). A ``Link: rel=modulepreload`` header on the page's HTML starts it
    while Streamlit's own scripts load. The chunk is named by its hash, so this is exact.
    """

    def __init__(self, app):
        chunk = _plotly_chunk()
        self.app, self.link = app, None if chunk is None else f"<{chunk}>; rel=modulepreload".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET" or self.link is None:
            await self.app(scope, receive, send)
            return

        async def send_with_link(message):
            if message["type"] == "http.response.start" and message.get("status") == 200:
                headers = list(message.get("headers", []))
                if any(name.lower() == b"content-type" and value.startswith(b"text/html") for name, value in headers):
                    message = {**message, "headers": [*headers, (b"link", self.link)]}
            await send(message)

        await self.app(scope, receive, send_with_link)


_dropped: dict[str, list[str]] = {}  # session id -> controls whose value was dropped
_dropped_lock = threading.Lock()


# Fields that carry the same kind of value. A number input registers "double_value", but a
# browser sends a whole-number input's value as "int_value", and Streamlit then records the
# field it received: either may be the metadata's when the other arrives. An empty input
# comes with no field at all (None), on every rerun, and Streamlit reads it as the default.
_NUMBER = {"int_value", "double_value", None}
_SAME_VALUE = {"int_value": _NUMBER, "double_value": _NUMBER}


def _bad_value(state, value_type: str | None) -> bool:
    """Whether a WidgetState cannot be its widget's value (``value_type`` from its metadata)."""
    field = state.WhichOneof("value")
    if value_type is not None and field not in _SAME_VALUE.get(value_type, {value_type}):
        return True
    if field == "double_value":
        return not math.isfinite(state.double_value)
    if field == "double_array_value":
        return not all(math.isfinite(value) for value in state.double_array_value.data)
    return False


# The ids Streamlit makes: "$$ID-<hash>-<key>" for widgets, and its internal keys (such as a
# component's trigger aggregator); anything else was never sent by a browser.
STREAMLIT_IDS = ("$$ID-", "$$STREAMLIT_INTERNAL_KEY")


def clean_widget_states(widget_states, metadata: dict) -> list[str]:
    """Drop from ``widget_states`` (a protobuf ``WidgetStates``) every value its widget, as
    ``metadata`` (id -> ``WidgetMetadata``) declares it, cannot take, and every id Streamlit
    never makes; return the controls' names."""
    from streamlit.runtime.state.common import user_key_from_element_id

    kept, dropped = [], []
    for state in widget_states.widgets:
        known = metadata.get(state.id)
        if known is None and not state.id.startswith(STREAMLIT_IDS):
            dropped.append("an unknown control")
        elif _bad_value(state, known.value_type if known else None):
            dropped.append(user_key_from_element_id(state.id) or "a control")
        else:
            kept.append(state)
            continue
        # In the server's log, what came and what was expected: the page names only the control.
        logging.getLogger(__name__).warning("dropped a value for %r: sent %s, its widget declares %s", state.id[:80],
                                            state.WhichOneof("value"), known.value_type if known else "nothing")
    if dropped:
        del widget_states.widgets[:]
        widget_states.widgets.extend(kept)
    return dropped


def guard_widget_states() -> None:
    """Make every session drop wrong-typed widget values before Streamlit reads them.

    Streamlit offers no hook between a message and its deserialisers, so this wraps
    ``AppSession.request_rerun``, where each rerun's widget states arrive on the event loop.
    """
    from streamlit.runtime.app_session import AppSession

    original = AppSession.request_rerun
    if getattr(original, "guarded", False):
        return

    def request_rerun(session, client_state):
        if client_state is not None:
            metadata = session._session_state._new_widget_state.widget_metadata
            dropped = clean_widget_states(client_state.widget_states, metadata)
            if dropped:
                with _dropped_lock:
                    _dropped.setdefault(session.id, []).extend(dropped)
        return original(session, client_state)

    request_rerun.guarded = True
    AppSession.request_rerun = request_rerun


def dropped_widget_notes(session_id: str) -> list[str]:
    """The controls whose values were dropped for this session since it last asked."""
    with _dropped_lock:
        return sorted(set(_dropped.pop(session_id, [])))


def routes() -> list[BaseRoute]:
    """The app's own HTTP routes, beside Streamlit's: the immutable assets (``ui/assets.py``).

    Called once as the server starts, so it also starts loading TensorFlow, the models and
    the test set in the background (``ui/warmup.py``): the first map needs none of them, and a
    click, which does, finds them loaded or waits for them.
    """
    from . import assets, warmup

    warmup.start()
    return [assets.route()]


def middleware() -> list[Middleware]:
    return [Middleware(MessageRateLimit), Middleware(PreloadPlotly)]
