"""A Locust load test that speaks Streamlit's websocket protocol: no browser, the server alone.

The benchmark, one command (about 10 minutes; writes benchmarks/results/load.md):

    AE_DATA_DIR=../shared python -m benchmarks.load

A quick look at a server already running on this machine (Locust's summary on the console):

    AE_DATA_DIR=../shared locust -f benchmarks/locustfile.py --headless -u 5 -r 5 \\
        --run-time 30s --stop-timeout 30 --host http://127.0.0.1:8501 --only-summary

(--stop-timeout lets each student finish its action at the end rather than be killed in
the middle of reading its socket.)

Each simulated student (``Student``) does what a browser session does, over its own websocket
(``harness/protocol.py``): it loads the page (GET, the health check, the socket), then visits
pages with 1 to 3 s of thinking between actions. A visit opens one page and works in it:

* the map: click two points (the chart's selection state, as the browser's plotly chart sends
  it), show the decoded digits under the points and move the background density slider;
* the sliders page: move z1 or z2 four times;
* "Your image": upload an MNIST test digit as a 112 x 112 PNG (upload URL over the socket,
  the PUT with the XSRF cookie, then the uploader's state);
* the grid, paths or train page: open it;
* or reload: a new websocket session that opens the page it was on.

Every action is reported to Locust's statistics as request type ``WS``, named "open map",
"click", "slider" (z1/z2 on the sliders page), "slider: density" (the map's), "radio:
background", "upload", "reload", "connect", ...: its response time runs from the message
sent (an upload: from asking for its URL) to the run's ``script_finished`` and the images it
shows fetched (``/media/...``, each once per session, as the browser's cache does), its
length the bytes the server sent. An action fails when its run shows an exception, the
socket closes, an image cannot be fetched, or no answer comes within ``LOAD_TIMEOUT``
seconds (60); the student then drops its socket and starts over with a new one, as a user
reloads a broken page.

With ``--rush`` every student connects, waits for all the others, and they open the map at
the same moment ("open map"); then each moves the sliders (sliders page) for the rest of
the run: the "N sessions open the map at once" figure.

Streamlit's own load tests drive browsers, and its design notes say Locust cannot speak this
protocol; this user speaks it, so one machine can simulate a classroom without Chromium's
cost. What it leaves out: the browser's static files (the ~4 MB of JavaScript, cached after
a first visit; a student GETs only the page), and the in-browser decoding of the pad and the
map's hover, which costs the server nothing. Every load it makes goes to this machine
(127.0.0.1) only.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import random
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from gevent.event import Event
from locust import User, between, events, task
from locust.exception import RescheduleTask, StopUser
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness.protocol import Run, Session, point_selection  # noqa: E402

TIMEOUT = float(os.environ.get("LOAD_TIMEOUT", "60"))
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
OTHER_PAGES = ("grid", "paths", "train")
DIGITS_TO_UPLOAD = 100


@events.init_command_line_parser.add_listener
def _add_options(parser) -> None:
    parser.add_argument("--rush", action="store_true", default=False,
                        help="all users open the map at the same moment, then move the sliders")


def mnist_digits_as_png(count: int = DIGITS_TO_UPLOAD) -> list[bytes]:
    """The first ``count`` MNIST test digits as 112 x 112 scans, dark ink on white (as the
    replicas benchmark uploads), read from AE_DATA_DIR's original file without TensorFlow."""
    path = Path(os.environ.get("AE_DATA_DIR", "")) / "mnist" / "t10k-images-idx3-ubyte.gz"
    if not os.environ.get("AE_DATA_DIR") or not path.is_file():
        raise SystemExit(f"The upload needs MNIST's test images at {path}: set AE_DATA_DIR to the "
                         "folder holding mnist/ (as for the app), e.g. AE_DATA_DIR=../shared.")
    with gzip.open(path) as file:
        images = np.frombuffer(file.read(16 + count * 28 * 28), np.uint8, offset=16).reshape(count, 28, 28)
    scans = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(255 - image).resize((112, 112), Image.BILINEAR).save(buffer, format="PNG")
        scans.append(buffer.getvalue())
    return scans


DIGITS = mnist_digits_as_png()
_rush_arrived = 0  # --rush: students connected (or failed to) so far.
_rush_go = Event()


class ActionFailed(Exception):
    """An action whose run came back, but with an exception on the page or cut short."""


class Student(User):
    """One browser session's worth of load; see the top of this file."""

    wait_time = between(1, 3)

    def on_start(self) -> None:
        if urlsplit(self.host or "").hostname not in LOOPBACK:  # A host given in the web UI.
            raise StopUser(f"this load test targets this machine only, not {self.host!r}")
        self.session: Session | None = None
        self.page = "map"
        self.rush = bool(getattr(self.environment.parsed_options, "rush", False))
        if self.rush:
            self.open_the_map_with_everyone()

    def on_stop(self) -> None:
        # The socket is left for the process's exit to close. Closing every student's socket at
        # once as Locust stops aborted it now and then: websockets' reader waits in a selector,
        # and under gevent a watcher restarted on a socket another greenlet had just closed
        # trips libev's assertion ("I/O watcher with invalid fd found in epoll_ctl").
        self.session = None

    # Reporting: each action is one Locust request; a failure ends the visit.

    def report(self, name: str, seconds: float, length: int, error: Exception | None) -> None:
        self.environment.events.request.fire(request_type="WS", name=name, response_time=seconds * 1000,
                                             response_length=length, exception=error, context={})

    def act(self, name: str, action) -> Run:
        """Do ``action`` (which returns a Run) and GET the images its run shows, as the browser
        then does; report the whole as ``name``; return the run. On a failure, drop the
        socket and end this visit (the next one connects anew)."""
        started = time.perf_counter()
        try:
            run = action()
            length = run.bytes + self.session.fetch_images(run)
        except Exception as error:  # A closed socket, a timeout, a refused upload, a missing widget, a 404.
            self.report(name, time.perf_counter() - started, 0, error)
            self.drop_session()
            raise RescheduleTask() from error
        seconds = time.perf_counter() - started
        problems = run.exceptions()
        if problems or run.status is None:
            error = ActionFailed(f"{problems[0][:200]}" if problems else "the run did not finish")
            self.report(name, seconds, length, error)
            self.drop_session()
            raise RescheduleTask() from error
        self.report(name, seconds, length, None)
        return run

    def connect(self, name: str = "connect") -> None:
        """Load the app as a browser does (its page, the health check, the websocket)."""
        started = time.perf_counter()
        try:
            self.session = Session(self.host, timeout=TIMEOUT)
        except Exception as error:
            self.report(name, time.perf_counter() - started, 0, error)
            self.session = None
            raise RescheduleTask() from error
        self.report(name, time.perf_counter() - started, self.session.page_bytes, None)

    def drop_session(self) -> None:
        if self.session is not None:
            try:
                self.session.close()
            except Exception:
                pass  # Already closed by the server; nothing to tidy.
            self.session = None

    def open(self, page: str) -> Run:
        if self.session is None:
            self.connect()
        self.page = page
        return self.act(f"open {page}", lambda: self.session.open(page))

    # The visits.

    # Each action finds its widget inside the timed call, so that a missing one is a failure.

    @task(3)
    def visit_the_map(self) -> None:
        view = self.open("map")
        for _ in range(2):
            self.wait()
            self.act("click", lambda: self.click_a_point(view))
        self.wait()
        # The density slider is disabled until something is drawn under the points.
        view = self.act("radio: background", lambda: self.session.set_value(
            view.widget("radio", "Under the points"), "digits"))
        self.wait()
        self.act("slider: density", lambda: self.session.set_value(
            view.widget("slider", "density"), random.randint(5, 40)))

    def click_a_point(self, view: Run) -> Run:
        """Click one of the map's 10,000 points, chosen at random, as the browser reports it."""
        points = view.chart_points("map_chart", self.session)
        return self.session.set_value(view.widget("plotly_chart", "map_chart"),
                                      point_selection(random.choice(points)))

    @task(3)
    def visit_the_sliders(self) -> None:
        view = self.open("sliders")
        for _ in range(4):
            self.wait()
            self.act("slider", lambda: self.session.set_value(
                view.widget("slider", random.choice(("z1", "z2"))), round(random.uniform(-5, 5), 1)))

    @task(1)
    def upload_a_digit(self) -> None:
        view = self.open("upload")
        self.wait()
        number = random.randrange(len(DIGITS))
        self.act("upload", lambda: self.session.upload(view.widget("file_uploader", "upload"),
                                                      f"digit{number}.png", DIGITS[number]))

    @task(1)
    def visit_another_page(self) -> None:
        self.open(random.choice(OTHER_PAGES))

    @task(1)
    def reload(self) -> None:
        """A new websocket session on the page it was on: page, health, socket and first run."""
        self.drop_session()

        def connect_and_open() -> Run:
            self.session = Session(self.host, timeout=TIMEOUT)
            return self.session.open(self.page)

        self.act("reload", connect_and_open)

    # --rush: everyone opens the map at once, then the sliders.

    def open_the_map_with_everyone(self) -> None:
        global _rush_arrived
        self.tasks = [Student.visit_the_sliders]  # After the map, this student only moves sliders.
        try:
            self.connect()
        except RescheduleTask:
            pass  # Reported as a failed "connect"; its "open map" connects again.
        finally:  # Counted even if it failed, so that the others do not wait for it.
            _rush_arrived += 1
            if _rush_arrived >= self.environment.parsed_options.num_users:
                _rush_go.set()
        _rush_go.wait(timeout=60)  # Whoever has connected by then goes.
        try:
            self.open("map")
        except RescheduleTask:
            pass  # Reported as a failed "open map"; the student goes on to the sliders.


@events.init.add_listener
def _refuse_other_hosts(environment, **_) -> None:
    if urlsplit(environment.host or "").hostname not in LOOPBACK:
        logging.error("This load test targets this machine only: give --host http://127.0.0.1:PORT, "
                      "not %r.", environment.host)
        sys.exit(2)
    try:
        with urllib.request.urlopen(f"{environment.host.rstrip('/')}/_stcore/health", timeout=10) as health:
            health.read()
    except OSError as error:
        logging.error("Nothing answers at %s/_stcore/health (%s): start the app there (streamlit run app.py "
                      "--server.port PORT) or give its --host.", environment.host.rstrip("/"), error)
        sys.exit(2)


@events.test_start.add_listener
def _reset_the_rush(environment, **_) -> None:
    global _rush_arrived
    _rush_arrived = 0
    _rush_go.clear()
