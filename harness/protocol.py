"""A Streamlit client without a browser: it speaks the app's websocket protocol directly.

A browser opens ``ws://HOST/_stcore/stream`` (subprotocol ``streamlit``, an ``Origin`` of the
same host) and sends protobuf ``BackMsg``s: a ``rerun_script`` names the page and, for a
widget change, the widgets' states and the widget's fragment. The server answers with
``ForwardMsg``s (deltas that draw elements) until ``script_finished``. This module does the
same, so that tests and load tests (``benchmarks/locustfile.py``) measure the server alone.

    session = Session("http://127.0.0.1:8501")
    view = session.open("map")                       # a Run: bytes, seconds, elements
    slider = view.widget("slider", "z1")
    session.set_value(slider, 1.5)

It uses the ``websockets`` package's synchronous client, which also runs under gevent
(Locust's workers), since gevent patches the sockets and threads it uses.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.sync.client import connect

# A run ends with one of these; FINISHED_EARLY_FOR_RERUN means another run follows at once.
_ENDS = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR,
         ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
# How each kind of widget's value travels in a WidgetState.
_VALUE_FIELDS = {"slider": "double_array_value", "number_input": "double_value", "radio": "int_value",
                 "selectbox": "int_value", "checkbox": "bool_value", "text_input": "string_value",
                 "plotly_chart": "string_value", "button": "trigger_value"}


@dataclass
class Widget:
    kind: str  # The element's type: "slider", "radio", "plotly_chart", …
    id: str
    label: str
    fragment_id: str  # "" outside a fragment.


@dataclass
class Run:
    """What the server sent for one rerun: its messages, their bytes and how long it took."""
    messages: list[ForwardMsg] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    status: int | None = None

    def elements(self, kind: str | None = None) -> list:
        """The new elements drawn, each a protobuf ``Element``; only ``kind`` ones if given."""
        found = []
        for message in self.messages:
            if message.WhichOneof("type") == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                if kind is None or element.WhichOneof("type") == kind:
                    found.append(element)
        return found

    def exceptions(self) -> list[str]:
        return [f"{element.exception.type}: {element.exception.message}" for element in self.elements("exception")]

    def widgets(self) -> list[Widget]:
        widgets = []
        for message in self.messages:
            if message.WhichOneof("type") != "delta" or message.delta.WhichOneof("type") != "new_element":
                continue
            element = message.delta.new_element
            kind = element.WhichOneof("type")
            inner = getattr(element, kind)
            if hasattr(inner, "id") and inner.id:
                label = getattr(inner, "label", "") or ""
                widgets.append(Widget(kind, inner.id, label, message.delta.fragment_id))
        return widgets

    def widget(self, kind: str, label_part: str) -> Widget:
        """The widget of ``kind`` whose label contains ``label_part`` (or whose id does)."""
        for widget in self.widgets():
            if widget.kind == kind and (label_part in widget.label or label_part in widget.id):
                return widget
        raise LookupError(f"no {kind} widget labelled like {label_part!r} in this run")

    def plotly_points(self) -> int:
        """How many points the plotly charts of this run hold, counted from their figures."""
        total = 0
        for element in self.elements("plotly_chart"):
            figure = json.loads(element.plotly_chart.spec)
            for trace in figure.get("data", []):
                if trace.get("mode", "markers").startswith("markers") and "x" in trace:
                    total += _length(trace["x"])
        return total


def _length(values) -> int:
    """A plotly array's length, whether a list or plotly's typed array ``{"dtype", "bdata"}``."""
    if isinstance(values, dict):
        if "shape" in values:
            return int(str(values["shape"]).split(",")[0])
        return len(base64.b64decode(values["bdata"])) // np.dtype(values["dtype"]).itemsize
    return len(values)


class Session:
    """One browser session's websocket. Not thread-safe: one caller at a time."""

    def __init__(self, base_url: str, timeout: float = 120.0):
        parts = urlsplit(base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        self.base_url, self.timeout = base_url.rstrip("/"), timeout
        self.socket = connect(f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/_stcore/stream",
                              subprotocols=["streamlit"], origin=f"{parts.scheme}://{parts.netloc}",
                              max_size=None, open_timeout=timeout, compression=None, legacy=True)
        self.page_name = ""
        self.query_string = ""
        self.states: dict[str, WidgetState] = {}  # The widget values this session has set.

    def close(self) -> None:
        self.socket.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, message: BackMsg) -> None:
        self.socket.send(message.SerializeToString())

    def rerun(self, fragment_id: str = "") -> Run:
        """Ask for a rerun of the current page with the current widget states; read it whole."""
        message = BackMsg()
        state = message.rerun_script
        state.page_name, state.query_string = self.page_name, self.query_string
        state.widget_states.widgets.extend(self.states.values())
        if fragment_id:
            state.fragment_id = fragment_id
        started = time.perf_counter()
        self.send(message)
        return self.read_run(started)

    def open(self, page_name: str, query_string: str = "") -> Run:
        """Open a page as the navigation does: a new page starts with no widget states."""
        self.page_name, self.query_string, self.states = page_name, query_string, {}
        return self.rerun()

    def set_value(self, widget: Widget, value) -> Run:
        """Change one widget, as the browser does when it is let go, and read the rerun."""
        state = WidgetState(id=widget.id)
        value_field = _VALUE_FIELDS[widget.kind]
        if value_field == "double_array_value":
            state.double_array_value.data.extend(value if isinstance(value, (list, tuple)) else [value])
        else:
            setattr(state, value_field, value)
        self.states[widget.id] = state
        return self.rerun(widget.fragment_id)

    def read_run(self, started: float | None = None) -> Run:
        """Read messages until the run ends (a rerun that ended early is followed to its end)."""
        run = Run()
        started = time.perf_counter() if started is None else started
        deadline = time.monotonic() + self.timeout
        while True:
            data = self.socket.recv(timeout=max(0.0, deadline - time.monotonic()))
            message = ForwardMsg()
            message.ParseFromString(data)
            run.messages.append(message)
            run.bytes += len(data)
            kind = message.WhichOneof("type")
            if kind == "page_info_changed":
                self.query_string = message.page_info_changed.query_string
            if kind == "script_finished" and message.script_finished in _ENDS:
                run.status = message.script_finished
                run.seconds = time.perf_counter() - started
                return run
