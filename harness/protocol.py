"""A Streamlit client without a browser: it speaks the app's websocket protocol directly.

A browser opens ``ws://HOST/_stcore/stream`` (subprotocol ``streamlit``, an ``Origin`` of the
same host) and sends protobuf ``BackMsg``s: a ``rerun_script`` names the page and, for a
widget change, the widgets' states and the widget's fragment. The server answers with
``ForwardMsg``s (deltas that draw elements) until ``script_finished``. This module does the
same, so that tests and load tests (``benchmarks/locustfile.py``) measure the server alone.

    session = Session("http://127.0.0.1:8501")
    view = session.open("sliders")                   # a Run: bytes, seconds, elements
    slider = view.widget("slider", "z1")
    session.set_value(slider, 1.5)
    view = session.open("map")
    chart = view.widget("plotly_chart", "map_chart")
    session.set_value(chart, point_selection(view.chart_points("map_chart")[7]))  # a click
    view = session.open("upload")
    session.upload(view.widget("file_uploader", "upload"), "digit.png", png_bytes)

Like a browser, a session first GETs the app's page and its health check and keeps their
cookies: Streamlit's XSRF cookie, which an upload's PUT must echo in ``X-Xsrftoken``, and,
behind deploy/serve.sh, nginx's cookies that keep the session on one replica. And like the
browser, it forgets the state of a widget that a run no longer draws (a chart whose figure
changed gets a new id): sending it back would run a callback for a widget that is gone.
And it keeps the browser's message cache: an element of 10 kB or more that the server marks
cacheable is kept, its hash is listed in every rerun, and the server then sends only a
reference to it (``ref_hash``) while it is unchanged, so a click on the map does not bring
the whole figure again. ``Run.bytes`` counts what came over the socket; ``Run.messages``
holds the referenced elements themselves. ``Session.fetch_images(run)`` then GETs the
images a run shows (``/media/...``), each once, as the browser does.

It uses the ``websockets`` package's synchronous client, which also runs under gevent
(Locust's workers), since gevent patches the sockets, threads and selectors it uses; but
many sockets closed at once there can abort gevent's loop (see the locustfile's on_stop).
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import numpy as np

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Common_pb2 import FileURLs, UploadedFileInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.sync.client import connect

from ae_core import framing, store

# A run ends with one of these; FINISHED_EARLY_FOR_RERUN means another run follows at once.
_ENDS = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR,
         ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
# How each kind of widget's value travels in a WidgetState (Streamlit 1.67: a radio or a
# selectbox sends its option's text, a chart its selection as JSON, and a number input of
# whole numbers an int_value; see Run.widgets).
_VALUE_FIELDS = {"slider": "double_array_value", "number_input": "double_value", "radio": "string_value",
                 "selectbox": "string_value", "checkbox": "bool_value", "text_input": "string_value",
                 "plotly_chart": "string_value", "button": "trigger_value",
                 "file_uploader": "file_uploader_state_value"}
XSRF_COOKIE = "_streamlit_xsrf"
# The browser forgets a cached message not used for this many runs (global.maxCachedMessageAge).
MAX_CACHED_MESSAGE_AGE = 2


@dataclass
class Widget:
    kind: str  # The element's type: "slider", "radio", "plotly_chart", …
    id: str
    label: str
    fragment_id: str  # "" outside a fragment.
    value_field: str = ""  # The WidgetState field a browser fills for it.


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

    def image_urls(self) -> list[str]:
        """The URLs of the images this run shows (``/media/...``), which the browser then GETs."""
        return [image.url for element in self.elements("imgs") for image in element.imgs.imgs if image.url]

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
                value_field = _VALUE_FIELDS.get(kind, "")
                if kind == "number_input" and inner.data_type == inner.DataType.INT:
                    value_field = "int_value"
                widgets.append(Widget(kind, inner.id, label, message.delta.fragment_id, value_field))
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


    def chart_points(self, key_part: str = "", session: "Session | None" = None) -> list[dict]:
        """The points of the plotly chart whose id contains ``key_part`` (the first chart if
        empty), each as the browser reports a click on it: ``curve_number``, ``point_index``,
        ``x``, ``y`` and, if the trace has it, ``customdata``.

        The map's figure comes with its point traces empty and a view of the page fills them
        from the points asset (ui/live/map_points.js); given the ``session``, this fetches that
        asset and fills them the same way: each trace's ``meta.points`` names a label, or "all".
        """
        for element in self.elements("plotly_chart"):
            if key_part not in element.plotly_chart.id:
                continue
            traces = json.loads(element.plotly_chart.spec).get("data", [])
            filled = self._filled_traces(traces, session)
            points = []
            for curve, trace in enumerate(traces):
                if curve in filled:
                    xs, ys, custom = filled[curve]
                elif "x" in trace and "y" in trace:
                    xs, ys = _values(trace["x"]), _values(trace["y"])
                    custom = _values(trace["customdata"]) if "customdata" in trace else None
                else:
                    continue
                for index, (x, y) in enumerate(zip(xs, ys)):
                    if x is None or y is None:
                        continue  # A trace's undrawn placeholder, until the points fill it.
                    point = {"curve_number": curve, "point_number": index, "point_index": index,
                             "x": float(x), "y": float(y)}
                    if custom is not None and index < len(custom):
                        # As plotly reports it: a scalar per point stays a scalar.
                        point["customdata"] = np.asarray(custom[index]).tolist()
                    points.append(point)
            return points
        raise LookupError(f"no plotly chart like {key_part!r} in this run")

    def _filled_traces(self, traces: list[dict], session: "Session | None") -> dict[int, tuple]:
        """curve -> (x, y, customdata) of the traces the page's points view fills."""
        wanted = {curve: trace["meta"]["points"] for curve, trace in enumerate(traces)
                  if isinstance(trace.get("meta"), dict) and "points" in trace["meta"]}
        if not wanted or session is None:
            return {}
        for element in self.elements("bidi_component"):
            data = element.bidi_component.bytes
            if not data:
                continue
            settings, _ = framing.unpack(data)
            if "points" in settings:
                points = store.read_points(session.fetch(settings["points"]))
                filled = {}
                for curve, which in wanted.items():
                    chosen = slice(None) if which == "all" else points["label"] == which
                    filled[curve] = (points["z1"][chosen], points["z2"][chosen], points["index"][chosen])
                return filled
        return {}


def point_selection(point: dict) -> str:
    """A chart's widget value after a click on ``point`` (one of ``Run.chart_points``): the
    JSON the browser's PlotlyChart sends (its ``point_indices`` count within the trace)."""
    return json.dumps({"selection": {"points": [point], "point_indices": [point["point_index"]],
                                     "box": [], "lasso": []}})


def _values(values) -> np.ndarray | list:
    """A plotly array as a list or numpy array, whether plain or typed (``{"dtype", "bdata"}``)."""
    if isinstance(values, dict):
        array = np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
        if "shape" in values:
            array = array.reshape([int(n) for n in str(values["shape"]).split(",")])
        return array
    return values


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
        # The page first, as a browser loads it: its cookies go with the socket and uploads.
        self.cookies = http.cookiejar.CookieJar()
        self.http = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.assets: dict[str, bytes] = {}  # What this session fetched of the app's assets.
        with self.http.open(f"{self.base_url}/", timeout=timeout) as page:
            self.page_bytes = len(page.read())
        with self.http.open(f"{self.base_url}/_stcore/health", timeout=timeout) as health:
            health.read()  # The browser asks it before connecting; its answer sets the XSRF cookie.
        cookie_header = "; ".join(f"{cookie.name}={cookie.value}" for cookie in self.cookies)
        self.socket = connect(f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/_stcore/stream",
                              subprotocols=["streamlit"], origin=f"{parts.scheme}://{parts.netloc}",
                              additional_headers={"Cookie": cookie_header} if cookie_header else None,
                              max_size=None, open_timeout=timeout, compression=None, legacy=True)
        self.page_name = ""
        self.query_string = ""
        self.session_id = ""  # The server's id for this session, from its first run.
        self.states: dict[str, WidgetState] = {}  # The widget values this session has set.
        self.fragments: dict[str, str] = {}  # Each drawn widget's fragment id ("" outside any).
        # The message cache: hash -> [message, the run count when last used, its fragment id].
        self.cache: dict[str, list] = {}
        self.runs_finished = 0
        self.last: Run | None = None  # The latest run read.
        self.images_seen: set[str] = set()  # Image URLs fetched, which the browser would not fetch again.

    def close(self) -> None:
        self.socket.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, message: BackMsg) -> None:
        self.socket.send(message.SerializeToString())

    def rerun(self, fragment_id: str = "", started: float | None = None) -> Run:
        """Ask for a rerun of the current page with the current widget states; read it whole."""
        message = BackMsg()
        state = message.rerun_script
        state.page_name, state.query_string = self.page_name, self.query_string
        state.widget_states.widgets.extend(self.states.values())
        state.cached_message_hashes.extend(self.cache)
        if fragment_id:
            state.fragment_id = fragment_id
        started = time.perf_counter() if started is None else started
        self.send(message)
        return self.read_run(started, fragment_id)

    def open(self, page_name: str, query_string: str = "") -> Run:
        """Open a page as the navigation does: a new page starts with no widget states."""
        self.page_name, self.query_string, self.states, self.fragments = page_name, query_string, {}, {}
        return self.rerun()

    def set_value(self, widget: Widget, value, started: float | None = None) -> Run:
        """Change one widget, as the browser does when it is let go, and read the rerun
        (``None`` empties it).

        ``started`` (``time.perf_counter()``) makes the run's seconds count from then."""
        state = WidgetState(id=widget.id)
        value_field = widget.value_field
        if value is None:
            pass  # An emptied input: a browser sends its id with no value at all.
        elif value_field == "double_array_value":
            state.double_array_value.data.extend(value if isinstance(value, (list, tuple)) else [value])
        elif value_field == "file_uploader_state_value":
            state.file_uploader_state_value.CopyFrom(value)
        else:
            setattr(state, value_field, value)
        self.states[widget.id] = state
        return self.rerun(widget.fragment_id, started)

    def upload(self, widget: Widget, name: str, data: bytes, mime: str = "image/png") -> Run:
        """Upload a file through a file uploader as the browser does, and read the rerun:
        ask for an upload URL over the socket, PUT the file (multipart, with the XSRF
        cookie echoed in ``X-Xsrftoken``), then set the uploader's state to that file.
        The run's seconds count from the request for the URL."""
        started = time.perf_counter()
        request = BackMsg()
        request.file_urls_request.request_id = uuid.uuid4().hex
        request.file_urls_request.file_names.append(name)
        request.file_urls_request.session_id = self.session_id
        self.send(request)
        response = self.read_until("file_urls_response").file_urls_response
        if response.error_msg or not response.file_urls:
            raise RuntimeError(f"the server gave no upload URL: {response.error_msg or 'none returned'}")
        urls = response.file_urls[0]
        boundary = uuid.uuid4().hex
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
                f"Content-Type: {mime}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        xsrf = next((cookie.value for cookie in self.cookies if cookie.name == XSRF_COOKIE), "")
        put = urllib.request.Request(urljoin(self.base_url + "/", urls.upload_url.lstrip("/")), data=body,
                                     method="PUT", headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                                            "X-Xsrftoken": xsrf})
        with self.http.open(put, timeout=self.timeout) as answer:
            answer.read()
        state = WidgetState().file_uploader_state_value
        state.uploaded_file_info.append(UploadedFileInfo(
            name=name, size=len(data), file_id=urls.file_id,
            file_urls=FileURLs(file_id=urls.file_id, upload_url=urls.upload_url, delete_url=urls.delete_url)))
        return self.set_value(widget, state, started)

    def fetch_images(self, run: Run) -> int:
        """GET the images a run shows that this session has not fetched yet, as the browser
        does once the run has drawn them; their bytes. A 404 (an image asked of a replica
        that does not hold it) raises ``urllib.error.HTTPError``."""
        fetched = 0
        for url in run.image_urls():
            if url in self.images_seen or url.startswith("data:"):
                continue
            with self.http.open(urljoin(self.base_url + "/", url.lstrip("/")), timeout=self.timeout) as image:
                fetched += len(image.read())
            self.images_seen.add(url)
        return fetched

    def fetch(self, url: str) -> bytes:
        """GET an asset of the app (``assets/…``), once per session, as the browser's cache keeps it."""
        if url not in self.assets:
            with self.http.open(urljoin(self.base_url + "/", url.lstrip("/")), timeout=self.timeout) as answer:
                self.assets[url] = answer.read()
        return self.assets[url]

    def read_until(self, kind: str) -> ForwardMsg:
        """Read messages until one of type ``kind`` (``file_urls_response``, say) arrives."""
        deadline = time.monotonic() + self.timeout
        while True:
            message = ForwardMsg()
            message.ParseFromString(self.socket.recv(timeout=max(0.0, deadline - time.monotonic())))
            if message.WhichOneof("type") == kind:
                return message

    def read_run(self, started: float | None = None, fragment_id: str = "") -> Run:
        """Read messages until the run ends (a rerun that ended early is followed to its end);
        then forget the states of the widgets the run (of ``fragment_id``, if one) undrew."""
        run = Run()
        started = time.perf_counter() if started is None else started
        deadline = time.monotonic() + self.timeout
        while True:
            data = self.socket.recv(timeout=max(0.0, deadline - time.monotonic()))
            message = ForwardMsg()
            message.ParseFromString(data)
            message = self._through_the_cache(message)
            run.messages.append(message)
            run.bytes += len(data)
            kind = message.WhichOneof("type")
            if kind == "page_info_changed":
                self.query_string = message.page_info_changed.query_string
            if kind == "new_session" and message.new_session.initialize.session_id:
                self.session_id = message.new_session.initialize.session_id
            if kind == "script_finished" and message.script_finished in _ENDS:
                run.status = message.script_finished
                run.seconds = time.perf_counter() - started
                self.last = run
                self._forget_undrawn(run, fragment_id)
                self._age_the_cache(fragment_id)
                return run

    def _through_the_cache(self, message: ForwardMsg) -> ForwardMsg:
        """Keep a cacheable message; put the cached message in place of a reference to it."""
        if message.WhichOneof("type") == "ref_hash":
            entry = self.cache.get(message.ref_hash)
            if entry is None:  # The browser raises the same: the server referred to what it never sent.
                raise RuntimeError(f"the server referred to message {message.ref_hash}, which this session does not hold")
            entry[1] = self.runs_finished
            cached = ForwardMsg()
            cached.CopyFrom(entry[0])
            cached.metadata.CopyFrom(message.metadata)  # Where it goes this time.
            return cached
        if message.metadata.cacheable and message.hash:
            if message.hash in self.cache:
                self.cache[message.hash][1] = self.runs_finished
            else:
                self.cache[message.hash] = [message, self.runs_finished, message.delta.fragment_id]
        return message

    def _age_the_cache(self, fragment_id: str) -> None:
        """As the browser does when a run finishes: forget what was not used for a few runs
        (after a fragment's run, only among that fragment's messages)."""
        self.runs_finished += 1
        for key, (_, used, fragment) in list(self.cache.items()):
            if fragment_id and fragment != fragment_id:
                continue
            if self.runs_finished - used > MAX_CACHED_MESSAGE_AGE:
                del self.cache[key]

    def _forget_undrawn(self, run: Run, fragment_id: str) -> None:
        """As the browser's widget manager does when a run finishes: keep the states of the
        widgets still on the page, which after a fragment's run includes those outside it."""
        if run.status not in (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY):
            return
        drawn = {widget.id: widget.fragment_id for widget in run.widgets()}
        if run.status == ForwardMsg.FINISHED_SUCCESSFULLY:  # The whole page was drawn.
            self.fragments = drawn
        else:
            self.fragments = {id_: fragment for id_, fragment in self.fragments.items()
                              if fragment != fragment_id} | drawn
        self.states = {id_: state for id_, state in self.states.items() if id_ in self.fragments}
