"""The app's server against clients that speak Streamlit's websocket protocol directly, as
any script can (``harness/protocol.py``): a rerun storm from one socket, an oversized frame.

Each test starts a real ``streamlit run app.py``; see ``ui/server.py`` for the defences."""

from __future__ import annotations

import statistics
import threading
import time
import urllib.request

import psutil
import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from websockets.exceptions import ConnectionClosed

from harness.browser import streamlit_server
from harness.protocol import Session
from ui import server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    log = tmp_path_factory.mktemp("protocol") / "streamlit.log"
    with streamlit_server(log) as (url, process):
        yield url, process


def _health_probe(url: str, stop: threading.Event, seen: list) -> None:
    """Ask /_stcore/health every 50 ms; record (time asked, seconds to answer or None)."""
    while not stop.is_set():
        asked = time.monotonic()
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=10) as response:
                answered = time.monotonic() - asked if response.status == 200 else None
        except OSError:
            answered = None
        seen.append((asked, answered))
        time.sleep(0.05)


# Seconds: the bound on any one slider move during and after a storm. It tells a stall (before
# the defences a storm held every move for minutes) from a busy machine's hiccup (CI once saw
# two moves of 2.1 and 2.5 s after a storm, with a median of 0.55 s); the medians judge speed.
SLOWEST_MOVE = 5.0


def _storm(url: str) -> dict:
    """One socket sends 1,000 reruns at once while an honest session moves a slider and the
    health check is asked every 50 ms; what each of them saw."""
    with Session(url) as honest:
        slider = honest.open("sliders").widget("slider", "z1")
        honest.set_value(slider, 0.5)  # Warm: the page's models and pictures are loaded.
        before = [honest.set_value(slider, step / 4 - 0.5).seconds for step in range(10)]
        stop, health, during = threading.Event(), [], []
        probe = threading.Thread(target=_health_probe, args=(url, stop, health))
        probe.start()

        def move_during_the_storm():
            for step in range(10):
                during.append(honest.set_value(slider, step / 4 - 1).seconds)

        attacker = Session(url)
        storm = BackMsg()
        storm.rerun_script.page_name = "map"
        frame = storm.SerializeToString()
        mover = threading.Thread(target=move_during_the_storm)
        mover.start()
        for _ in range(1000):
            try:
                attacker.socket.send(frame)
            except ConnectionClosed:
                break  # Closed mid-storm: the rest could not even be sent.
        storm_ended = time.monotonic()
        try:
            while True:
                attacker.socket.recv(timeout=10)
        except ConnectionClosed as closed:
            attacker_closed = closed
        mover.join(timeout=60)
        after = [honest.set_value(slider, step / 4).seconds for step in range(10)]
        stop.set()
        probe.join()
    answers = [asked + answered for asked, answered in health if answered is not None and asked + answered >= storm_ended]
    return {"closed": attacker_closed, "before": before, "during": during, "after": after, "health": health,
            "health_back": min(answers) - storm_ended}


def _assert_the_storm_was_contained(seen: dict) -> None:
    closed = seen["closed"].rcvd
    assert closed is not None and closed.code == server.CLOSE_CODE and "Too many messages" in closed.reason, seen["closed"]
    # Each phase is judged by its median, with SLOWEST_MOVE, a stall's bound, on its slowest
    # move: the p95 of ten moves is their slowest, and a slow move or two is a busy machine's
    # hiccup (a neighbouring test loading the other core), while harm that lasts slows them all.
    assert len(seen["during"]) == 10, "the honest session's moves during the storm did not all finish"
    assert statistics.median(seen["during"]) < 1.0 and max(seen["during"]) < SLOWEST_MOVE, \
        f"slider moves during the storm: {sorted(seen['during'])}"
    # After the storm, moves are as quick as before it: a median under 0.4 s, or under twice
    # this run's own pre-storm median when the machine is busier (a neighbour's load, not the storm's).
    allowed = max(0.4, 2 * statistics.median(seen["before"]))
    assert statistics.median(seen["after"]) < allowed and max(seen["after"]) < SLOWEST_MOVE, \
        f"slider moves after the storm: {sorted(seen['after'])}, before it: {sorted(seen['before'])}"
    assert seen["health_back"] < 5.0
    assert all(answered is not None for _, answered in seen["health"]), "a health check failed"


def test_a_rerun_storm_closes_its_socket_and_stalls_no_one(app_url):
    _assert_the_storm_was_contained(_storm(app_url[0]))


def test_a_rerun_storm_through_nginx_gets_no_one_a_502(tmp_path):
    from harness.deploy import serve

    with serve(replicas=2, run_dir=tmp_path / "run") as served:
        seen = _storm(served.url)
        # serve.sh's own readiness probes included: a 502 there meant nginx still had a worker
        # that saw every replica down, which also took the first browser's connections.
        statuses = [row["status"] for row in served.access_log()]
    _assert_the_storm_was_contained(seen)
    assert "502" not in statuses and "504" not in statuses, statuses


def test_a_frame_over_the_limit_is_refused_before_it_is_read(app_url):
    url, process = app_url
    server_process = psutil.Process(process.pid)
    with Session(url) as session:
        session.open("grid")
        session.open("grid")  # Warm: what the page caches is in memory before the baseline.
        before = server_process.memory_info().rss
        oversized = BackMsg()
        oversized.rerun_script.page_name = "grid"
        oversized.rerun_script.query_string = "x=" + "a" * (30 * 10**6)
        with pytest.raises(ConnectionClosed) as closed:
            session.send(oversized)
            while True:
                session.socket.recv(timeout=20)
    grown = server_process.memory_info().rss - before
    # 1009 (Message Too Big), or no close frame at all when the server dropped the connection
    # while this client was still sending the payload it refused to read.
    assert closed.value.rcvd is None or closed.value.rcvd.code == 1009, closed.value
    assert grown < 60 * 2**20, f"the server's memory grew by {grown / 2**20:.0f} MiB"
    with Session(url) as session:  # And the server still serves.
        assert session.open("grid").exceptions() == []


WRONG_TYPES = [  # (page, widget kind, label, the WidgetState fields a script sent instead)
    ("map", "selectbox", "Dataset", {"double_array_value": {"data": [1.0, 2.0]}}),
    ("map", "number_input", "Test image", {"double_value": float("nan")}),
    ("map", "number_input", "Test image", {"string_value": "zz"}),
    ("sliders", "slider", "z1", {"string_value": "abc"}),
    ("sliders", "slider", "z1", {"double_array_value": {"data": [float("inf")]}}),
]


@pytest.mark.parametrize("page, kind, label, sent", WRONG_TYPES)
def test_a_wrong_typed_widget_value_is_dropped_and_named(app_url, page, kind, label, sent):
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    url, _ = app_url
    with Session(url) as session:
        widget = session.open(page).widget(kind, label)
        session.states[widget.id] = WidgetState(id=widget.id, **sent)
        changed = session.rerun(widget.fragment_id)
        shown = session.open(page)  # A fragment's rerun leaves the note to the next full run.
    # The note is shown once, by whichever run comes first through app.py.
    key = widget.id.split("-", 2)[-1]
    for run in (changed, shown):
        assert run.exceptions() == []
        assert not any(b"Traceback" in message.SerializeToString() for message in run.messages)
    notes = [element.markdown.body for run in (changed, shown) for element in run.elements("markdown")
             if "was dropped" in element.markdown.body]
    assert notes == [f":material/block: A value this browser sent for {key} was of the wrong type and was "
                     f"dropped; reload the page if a control looks wrong."]


def test_a_number_typed_on_the_map_is_kept_as_the_browser_sends_it(app_url, test_set):
    """A browser sends a whole-number input's value as an int, though Streamlit registers the
    input as a double: the guard once dropped it whenever the script had last set the value
    itself (CI lost a clicked image to that), so the image must show, with no note, each time."""
    from ae_core.datasets import BY_NAME

    _, labels = test_set
    url, _ = app_url
    with Session(url) as session:
        box = session.open("map").widget("number_input", "Test image")
        assert box.value_field == "int_value"
        runs = [session.set_value(box, 4110), session.rerun(), session.set_value(box, 17), session.open("map")]
    for run, index in zip(runs, (4110, 4110, 17, 17)):
        assert run.exceptions() == []
        assert not [element for element in run.elements("markdown") if "was dropped" in element.markdown.body]
        headings = [element.heading.body for element in run.elements("heading")]
        assert f"Test image #{index} · {BY_NAME['mnist'].class_names[labels[index]]}" in headings


def test_an_emptied_number_box_is_no_wrong_type(app_url, test_set):
    """A browser sends an empty number input with no value on every rerun (a fresh map's
    first click did, and the guard once dropped it with a note): emptying the box after a
    number forgets the image, with no note. Streamlit then records no field for the box,
    and a string sent next is still dropped."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    url, _ = app_url
    with Session(url) as session:
        box = session.open("map").widget("number_input", "Test image")
        runs = [session.set_value(box, None), session.set_value(box, 4110), session.set_value(box, None)]
        session.states[box.id] = WidgetState(id=box.id, string_value="zz")
        wrong = [session.rerun(box.fragment_id), session.rerun()]
    for run, shown in zip(runs, (False, True, False)):
        assert run.exceptions() == []
        assert not [element for element in run.elements("markdown") if "was dropped" in element.markdown.body]
        headings = [element.heading.body for element in run.elements("heading")]
        assert any(heading.startswith("Test image #4110 ") for heading in headings) == shown
    assert [run.exceptions() for run in wrong] == [[], []]
    assert [element for run in wrong for element in run.elements("markdown") if "was dropped" in element.markdown.body]


def test_a_widget_id_that_streamlit_never_made_is_dropped(app_url):
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    url, _ = app_url
    with Session(url) as session:
        slider = session.open("sliders").widget("slider", "z1")
        session.states["z1"] = WidgetState(id=slider.id.removeprefix("$$ID-"), double_array_value={"data": [1.0]})
        assert session.rerun(slider.fragment_id).exceptions() == []
        notes = [element.markdown.body for element in session.open("sliders").elements("markdown")
                 if "was dropped" in element.markdown.body]
    assert len(notes) == 1 and "an unknown control" in notes[0]

