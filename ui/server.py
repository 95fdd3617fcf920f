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

import math
import threading
import time

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


_dropped: dict[str, list[str]] = {}  # session id -> controls whose value was dropped
_dropped_lock = threading.Lock()


def _bad_value(state, value_type: str | None) -> bool:
    """Whether a WidgetState cannot be its widget's value (``value_type`` from its metadata)."""
    field = state.WhichOneof("value")
    if value_type is not None and field != value_type:
        return True
    if field == "double_value":
        return not math.isfinite(state.double_value)
    if field == "double_array_value":
        return not all(math.isfinite(value) for value in state.double_array_value.data)
    return False


def clean_widget_states(widget_states, metadata: dict) -> list[str]:
    """Drop from ``widget_states`` (a protobuf ``WidgetStates``) every value its widget, as
    ``metadata`` (id -> ``WidgetMetadata``) declares it, cannot take; return their names."""
    from streamlit.runtime.state.common import user_key_from_element_id

    kept, dropped = [], []
    for state in widget_states.widgets:
        known = metadata.get(state.id)
        if not state.id.startswith("$$ID-") or _bad_value(state, known.value_type if known else None):
            dropped.append(user_key_from_element_id(state.id) or "a control" if state.id.startswith("$$ID-")
                           else "an unknown control")
        else:
            kept.append(state)
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
    return [Middleware(MessageRateLimit)]
