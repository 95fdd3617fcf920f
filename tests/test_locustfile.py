"""The load test's client, without a server: a click it sends reads, in the app, as a click on
that point; a run forgets the widgets it no longer draws, as the browser does; and
benchmarks/locustfile.py loads and refuses any host but this machine (where Locust is
installed: requirements-dev.txt).

The load test itself needs a server: python -m benchmarks.load (see its top)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

from harness.protocol import Run, Session, point_selection
from ui.figures import latent_map
from ui.selection import Selection, parse_selection

ROOT = Path(__file__).resolve().parent.parent


class _Assets:
    """A session's asset fetching, serving the one points asset the map's view names."""

    def __init__(self, blob: bytes):
        self.blob = blob

    def fetch(self, url: str) -> bytes:
        assert url == "assets/points.bin", url
        return self.blob


def _map_run(table: pd.DataFrame) -> tuple[Run, _Assets]:
    """A run that draws the app's latent map of ``table`` as the server sends it (its point
    traces empty, the points view naming the asset that fills them), and that asset."""
    from ae_core.store import MapData, points_blob
    from ui.live import envelope

    chart = ForwardMsg()
    chart.delta.new_element.plotly_chart.id = "$$ID-abc-map_chart"
    chart.delta.new_element.plotly_chart.spec = latent_map(tuple("0123456789")).to_json()
    chart.delta.fragment_id = "fragment"
    view = ForwardMsg()
    view.delta.new_element.bidi_component.bytes = envelope({"chart": "map_chart", "points": "assets/points.bin"})
    data = MapData(table[["z1", "z2"]].to_numpy(np.float32), table["label"].to_numpy(), np.zeros(len(table), np.float32), b"")
    return Run(messages=[view, chart]), _Assets(points_blob(data))


def _drawn(*widgets: tuple[str, str], status=ForwardMsg.FINISHED_SUCCESSFULLY) -> Run:
    """A finished run that drew sliders with these (id, fragment id)."""
    run = Run(status=status)
    for widget_id, fragment in widgets:
        message = ForwardMsg()
        message.delta.new_element.slider.id = widget_id
        message.delta.fragment_id = fragment
        run.messages.append(message)
    return run


def test_a_run_forgets_the_widgets_it_no_longer_draws_as_the_browser_does():
    session = object.__new__(Session)  # Its bookkeeping only: no socket.
    session.states = {name: WidgetState(id=name) for name in ("page", "chart-old", "in-fragment")}
    session.fragments = {}
    session._forget_undrawn(_drawn(("page", ""), ("chart-old", "f"), ("in-fragment", "f")), "")
    # A fragment's run that redrew the chart under a new id: the old id goes, the page stays.
    session._forget_undrawn(_drawn(("chart-new", "f"), ("in-fragment", "f"),
                                   status=ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY), "f")
    assert sorted(session.states) == ["in-fragment", "page"]
    # A whole-page run keeps only what it drew.
    session._forget_undrawn(_drawn(("in-fragment", "f")), "")
    assert sorted(session.states) == ["in-fragment"]


locust_missing = pytest.mark.skipif(importlib.util.find_spec("locust") is None or not os.environ.get("AE_DATA_DIR"),
                                    reason="needs Locust (pip install -r requirements-dev.txt) and AE_DATA_DIR")


def _locust(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "locust", "-f", str(ROOT / "benchmarks" / "locustfile.py"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


@locust_missing
def test_the_locustfile_offers_its_student():
    listed = _locust("--list")
    assert listed.returncode == 0, listed.stderr
    assert "Student" in listed.stdout


@locust_missing
def test_the_locustfile_refuses_another_machine_before_sending_anything():
    # 192.0.2.1 is a documentation address (RFC 5737): nothing would answer there anyway.
    refused = _locust("--headless", "-u", "1", "-r", "1", "--run-time", "5s", "--host", "http://192.0.2.1:8501")
    assert refused.returncode == 2
    assert "targets this machine only" in refused.stderr


def test_the_message_cache_resolves_references_and_forgets_as_the_browser_does():
    session = object.__new__(Session)  # Its bookkeeping only: no socket.
    session.cache, session.runs_finished = {}, 0
    for key, fragment in (("page-element", ""), ("fragment-element", "f")):
        message = ForwardMsg(hash=key)
        message.metadata.cacheable = True
        message.delta.new_element.slider.id = key
        message.delta.fragment_id = fragment
        session._through_the_cache(message)
    reference = ForwardMsg(ref_hash="page-element")
    reference.metadata.delta_path.extend([0, 4])
    resolved = session._through_the_cache(reference)
    assert resolved.delta.new_element.slider.id == "page-element" and list(resolved.metadata.delta_path) == [0, 4]
    for _ in range(5):  # Fragment runs age only that fragment's messages.
        session._age_the_cache("f")
    assert sorted(session.cache) == ["page-element"]
    for _ in range(3):
        session._age_the_cache("")
    assert session.cache == {}
    with pytest.raises(RuntimeError, match="does not hold"):
        session._through_the_cache(reference)
