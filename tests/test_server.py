"""The server's guards, without a server: which widget values reach Streamlit (ui/server.py).
The same guards against a real server and a hostile client: tests/test_protocol.py."""

from __future__ import annotations

from ui import server


def test_clean_widget_states_keeps_what_a_browser_sends_and_drops_the_rest():
    """Against Streamlit's own metadata of a component (its state and its trigger aggregator,
    an internal key), a slider and number inputs: each well-typed value stays, each other one
    goes. A number may come as an int or a double, or as nothing when emptied, as browsers send them."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates
    from streamlit.runtime.state.common import WidgetMetadata

    def metadata(widget_id: str, value_type: str) -> WidgetMetadata:
        return WidgetMetadata(widget_id, lambda value: value, lambda value: value, value_type)

    trigger = "$$STREAMLIT_INTERNAL_KEY_live_pad__events"
    known = {"$$ID-1-z1": metadata("$$ID-1-z1", "double_array_value"),
             # A number input, as Streamlit registers it, and after it received a browser's value.
             "$$ID-3-index": metadata("$$ID-3-index", "double_value"),
             "$$ID-4-a": metadata("$$ID-4-a", "int_value"),
             "$$ID-2-live_pad": metadata("$$ID-2-live_pad", "json_value"),
             trigger: metadata(trigger, "json_trigger_value")}
    states = WidgetStates(widgets=[
        WidgetState(id="$$ID-1-z1", double_array_value={"data": [1.5]}),
        WidgetState(id="$$ID-2-live_pad", json_value="{}"),
        WidgetState(id="$$ID-3-index", int_value=4110),  # What a browser sends for whole numbers.
        WidgetState(id="$$ID-4-a", double_value=7.0),
        WidgetState(id="$$ID-3-index"),  # An empty input, as a browser sends it.
        WidgetState(id="$$ID-3-index", string_value="4110"),
        WidgetState(id="$$ID-4-a", double_value=float("nan")),
        WidgetState(id=trigger, json_trigger_value='[{"event": "release", "value": [1, 2]}]'),
        WidgetState(id="$$ID-9-later", int_value=3),  # Not drawn yet in this session: Streamlit's call.
        WidgetState(id="$$ID-1-z1", string_value="abc"),
        WidgetState(id="$$ID-1-z1"),  # A slider is never empty.
        WidgetState(id="z1", double_array_value={"data": [1.0]})])
    dropped = server.clean_widget_states(states, known)
    assert [state.id for state in states.widgets] == ["$$ID-1-z1", "$$ID-2-live_pad", "$$ID-3-index", "$$ID-4-a",
                                                      "$$ID-3-index", trigger, "$$ID-9-later"]
    assert dropped == ["index", "a", "z1", "z1", "an unknown control"]


def _headers(app, method: str, path: str) -> dict[str, str]:
    """The response headers of one request to the ASGI ``app``, as uvicorn would make it."""
    import asyncio

    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "root_path": "", "scheme": "http", "query_string": b"", "headers": [],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
    [start] = [message for message in sent if message["type"] == "http.response.start"]
    return {name.decode(): value.decode() for name, value in start["headers"]}


def test_the_pages_html_asks_for_streamlits_plotly_chunk_and_nothing_else_does():
    """The Link header on an HTML page, none on a script or a POST; the chunk it names is a
    file of the installed Streamlit."""
    from pathlib import Path

    import streamlit
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    chunk = server._plotly_chunk()
    assert chunk is not None
    assert (Path(streamlit.__file__).parent / "static" / chunk.removeprefix("./")).is_file()
    app = server.PreloadPlotly(Starlette(routes=[
        Route("/map", lambda request: HTMLResponse("<html></html>"), methods=["GET", "POST"]),
        Route("/x.js", lambda request: Response("1", media_type="application/javascript"))]))
    assert _headers(app, "GET", "/map")["link"] == f"<{chunk}>; rel=modulepreload"
    assert "link" not in _headers(app, "GET", "/x.js")
    assert "link" not in _headers(app, "POST", "/map")
