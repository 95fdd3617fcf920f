"""deploy/: replicas of the app behind nginx, checked from outside.

The slow test starts ``bash deploy/serve.sh --replicas 2`` (nginx and two replicas on
127.0.0.1, each replica started by deploy/entrypoint.sh, the container's entry point) and,
with one server start, checks in turn:

1. stickiness: ten browser sessions each choose a point and upload a digit, and keep both
   across 5 reruns; every request of a session reaches one replica (its responses'
   X-Replica header and nginx's access log say which), and both replicas are used;
2. a fault: one replica killed with SIGKILL while the sessions are open. The other
   replica's sessions go on with no error and no reconnect; new sessions land on the
   survivor at once and the watcher marks the dead one down within its interval; the dead
   replica's sessions see Streamlit's reconnect within seconds (not a hang), and work after
   a reload;
3. the limits: one browser's upload flood is cut by nginx (429) while other sessions upload
   as usual; a flood without the cookie and one from an address cycling cookies are cut
   too; a body over the app's 20 MiB is refused by nginx (413) and the largest file the
   browser sends is not.

Another slow test stops one replica (SIGSTOP) as a busy one would stall: it leaves the round
robin, and the sessions pinned to it stay. The quick tests check serve.sh's refusals and the files nothing here can run (no docker
daemon, no Kubernetes). The 40-session load comparison is ``python -m benchmarks.replicas``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from harness.deploy import free_ports, serve
from harness.pages import (IDLE, MAP_DRAWN, POINT_SHOWN, UPLOADER_SHOWN, click_point, digit_png, go_to,
                           page_state, rerun, upload)

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SESSIONS = 6  # Three a replica: enough to show stickiness, a kill's victims and survivors.
RERUNS = 3
INTERVAL = 2  # serve.sh --check-interval, seconds
DEADLINE_SECONDS = 420  # About 150 s on a quiet 2-core machine.


def run_serve(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(DEPLOY / "serve.sh"), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "AE_PYTHON": sys.executable})


def test_serve_refuses_a_port_in_use_in_one_sentence():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = run_serve("--replicas", "1", "--port", str(port))
        assert refused.returncode != 0
        assert refused.stderr.strip() == (f"serve.sh: port {port} on 127.0.0.1 is already in use: stop what "
                                          f"listens there, or choose another with --port.")
        free, = free_ports(1)
        other = run_serve("--replicas", "1", "--port", str(free), "--replica-port", str(port))
        assert other.returncode != 0
        assert other.stderr.strip() == (f"serve.sh: port {port}, for replica r1, is already in use: stop what "
                                        f"listens there, or choose other ports with --replica-port.")


@pytest.mark.parametrize("args, message", [
    (["--replicas", "0"], "--replicas must be a whole number of at least 1, not '0'."),
    (["--port", "http"], "--port must be a port number, not 'http'."),
    (["--backend", "nohost"], "--backend must be HOST:PORT, not 'nohost'."),
    (["--wat"], "unknown option --wat (see bash deploy/serve.sh --help)."),
])
def test_serve_says_what_is_wrong_with_its_options(args, message):
    refused = run_serve(*args) if "--port" in args else run_serve("--port", "1", *args)
    assert refused.returncode != 0
    assert refused.stderr.strip() == f"serve.sh: {message}"


def _dockerfile() -> list[tuple[str, str]]:
    """deploy/Dockerfile as ``(INSTRUCTION, arguments)`` pairs, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _kubernetes() -> dict[str, dict]:
    """deploy/kubernetes.yaml's documents by kind (the claims listed by name under "claims")."""
    documents = [document for document in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()) if document]
    by_kind = {document["kind"]: document for document in documents}
    by_kind["claims"] = {document["metadata"]["name"]: document for document in documents
                         if document["kind"] == "PersistentVolumeClaim"}
    return by_kind


def test_the_image_runs_the_entry_script_serve_sh_runs():
    """What can be checked of deploy/Dockerfile without a docker daemon."""
    steps = _dockerfile()
    instructions = [name for name, _ in steps]
    arguments = dict(steps)  # The last of each instruction.
    assert steps[0] == ("FROM", "python:3.11-slim")
    # Requirements first, so that a change to the code reuses the installed layer.
    copy_requirements = steps.index(("COPY", "requirements.txt ."))
    install = next(i for i, (name, args) in enumerate(steps)
                   if name == "RUN" and re.search(r"pip3? install .*-r requirements\.txt", args))
    copy_all = steps.index(("COPY", ". ."))
    assert copy_requirements < install < copy_all
    assert json.loads(arguments["ENTRYPOINT"]) == ["deploy/entrypoint.sh"]
    assert os.access(DEPLOY / "entrypoint.sh", os.X_OK)
    # The port the image exposes is the one its health check asks and the entry script's default.
    port = int(arguments["EXPOSE"])
    assert arguments["HEALTHCHECK"] == f"CMD curl --fail http://localhost:{port}/_stcore/health"
    assert f'--server.port "${{PORT:-{port}}}"' in (DEPLOY / "entrypoint.sh").read_text()
    user = arguments["USER"]
    assert any(re.search(rf"useradd --uid \d+ --create-home {user}\b", args) for name, args in steps if name == "RUN")
    assert instructions.index("USER") > copy_all  # Installed as root, run as the user.
    # serve.sh starts every replica with that same script.
    assert '"$ROOT/deploy/entrypoint.sh" >"$run_dir/replica-' in (DEPLOY / "serve.sh").read_text()
    # The build context's ignore file keeps the virtual environment and trained models out.
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", ".git", "trained"} <= set(ignored)


def test_the_kubernetes_manifest_has_affinity_probes_and_shared_folders():
    """deploy/kubernetes.yaml, read as YAML: what can be checked without a cluster."""
    manifest = _kubernetes()
    deployment, service, ingress = manifest["Deployment"], manifest["Service"], manifest["Ingress"]
    pod = deployment["spec"]["template"]
    [app] = pod["spec"]["containers"]
    [prepare] = pod["spec"]["initContainers"]
    assert prepare["args"] == ["prepare"] and prepare["image"] == app["image"]
    # The Service and the Ingress reach the pods, by their labels and the app's named port.
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    ports = {port["name"]: port["containerPort"] for port in app["ports"]}
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"] and "http" in ports
    [path] = ingress["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"]["service"]["name"] == service["metadata"]["name"]
    assert path["backend"]["service"]["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}
    # A session stays on its pod: by client address at the Service, by cookie at the Ingress.
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    for probe in ("readinessProbe", "livenessProbe"):
        assert app[probe]["httpGet"] == {"path": "/_stcore/health", "port": "http"}
    # Each folder variable names where its volume is mounted, and each volume is a declared claim.
    for container in (app, prepare):
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        environment = {variable["name"]: variable for variable in container["env"]}
        for variable in ("AE_DATA_DIR", "TFDS_DATA_DIR", "AE_MODELS_DIR"):
            if variable in environment:
                assert environment[variable]["value"] in mounts, (container["name"], variable)
    volumes = {volume["name"]: volume["persistentVolumeClaim"]["claimName"] for volume in pod["spec"]["volumes"]}
    assert set(volumes.values()) <= set(manifest["claims"])
    assert {mount["name"] for mount in app["volumeMounts"]} <= set(volumes)
    environment = {variable["name"]: variable for variable in app["env"]}
    assert {"AE_DATA_DIR", "TFDS_DATA_DIR", "AE_MODELS_DIR", "STREAMLIT_SERVER_COOKIE_SECRET"} <= set(environment)
    assert environment["STREAMLIT_SERVER_COOKIE_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == "cookie-secret"
    # The models' folder is shared and writable by every pod; the image sets the same folders.
    trained = next(mount for mount in app["volumeMounts"] if mount["mountPath"] == environment["AE_MODELS_DIR"]["value"])
    assert not trained.get("readOnly") and "ReadWriteMany" in manifest["claims"][volumes[trained["name"]]]["spec"]["accessModes"]
    image_environment = dict(re.findall(r"(\w+)=(\S+)", dict(_dockerfile())["ENV"]))
    for variable in ("AE_MODELS_DIR", "TFDS_DATA_DIR"):
        assert image_environment[variable] == environment[variable]["value"]
    # The pod runs as the image's user.
    uid = re.search(r"useradd --uid (\d+)", " ".join(args for name, args in _dockerfile() if name == "RUN")).group(1)
    assert pod["spec"]["securityContext"]["runAsUser"] == int(uid)


def _nginx_blocks(text: str) -> list:
    """nginx's configuration as nested lists: ``[name, *arguments]`` for a directive, with a
    last item that is itself such a list for a block (``location ... { ... }``)."""
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'|#[^\n]*|[{};]|[^\s{};"\'#]+', text)
    stack, words = [[]], []
    for token in tokens:
        if token.startswith("#"):
            continue
        if token == ";":
            stack[-1].append(words)
            words = []
        elif token == "{":
            block = []
            stack[-1].append([*words, block])
            stack.append(block)
            words = []
        elif token == "}":
            stack.pop()
        else:
            words.append(token)
    assert len(stack) == 1 and not words, "unbalanced braces or a directive without its ';'"
    return stack[0]


def _nginx_bytes(size: str) -> int:
    """An nginx size ("20m", "512k", "1024") in bytes: nginx's k and m are 1024 and 1024**2."""
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", size).groups()
    return int(number) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[unit.lower()]


def _upload_limit_bytes() -> int:
    """server.maxUploadSize of .streamlit/config.toml, as Streamlit's server counts it: MiB."""
    with open(ROOT / ".streamlit" / "config.toml", "rb") as config:
        return tomllib.load(config)["server"]["maxUploadSize"] * 2**20


def test_nginx_takes_the_upload_the_app_takes_and_no_more():
    """deploy/nginx.conf.template's body limit for uploads is the app's (config.toml's)."""
    [http] = [item for item in _nginx_blocks((DEPLOY / "nginx.conf.template").read_text()) if item[0] == "http"]
    [server] = [item for item in http[-1] if item[0] == "server"]
    [uploads] = [item for item in server[-1] if item[:3] == ["location", "^~", "/_stcore/upload_file/"]]
    [limit] = [item[1:] for item in uploads[-1] if item[0] == "client_max_body_size"]
    assert [_nginx_bytes(size) for size in limit] == [_upload_limit_bytes()]


def test_the_kubernetes_ingress_takes_the_upload_the_app_takes():
    ingress = _kubernetes()["Ingress"]
    size = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert _nginx_bytes(size) == _upload_limit_bytes()


# --- the slow test: two replicas, nginx, browsers -------------------------------------------

class Session:
    """One browser session (its own context, so its own cookies), and what it saw."""

    def __init__(self, number: int):
        self.number = number
        self.responses: list[tuple[float, str, int, str | None]] = []  # (time, url, status, X-Replica)
        self.sockets: list[dict] = []  # {"opened": t, "closed": t or None}
        self.sent: list[tuple[float, int]] = []  # (time, bytes) of each websocket frame sent
        self.upload_requests = []
        self.step = "not started"
        self.times: dict[str, float] = {}  # Seconds per step, for the report.

    async def open(self, browser, url: str) -> None:
        self.context = await browser.new_context(viewport={"width": 1500, "height": 1000})
        self.page = await self.context.new_page()
        self.page.set_default_timeout(120_000)
        self.page.on("response", lambda r: self.responses.append((time.monotonic(), r.url, r.status,
                                                                    r.headers.get("x-replica"))))
        self.page.on("websocket", self._websocket)
        self.page.on("request", lambda r: self.upload_requests.append(r)
                     if r.method == "PUT" and "/_stcore/upload_file/" in r.url else None)
        await self.page.goto(url)

    def _websocket(self, socket_) -> None:
        entry = {"opened": time.monotonic(), "closed": None}
        self.sockets.append(entry)
        socket_.on("close", lambda _: entry.update(closed=time.monotonic()))
        socket_.on("framesent", lambda payload: self.sent.append((time.monotonic(), len(payload))))

    async def route(self) -> str | None:
        return {c["name"]: c["value"] for c in await self.context.cookies()}.get("ae_route")

    def replicas(self, since: float = 0.0) -> set[str]:
        """The replicas that answered this session's requests since ``since``. Static files are
        left out: the browser keeps them, and shows a kept one's headers as it first had them."""
        return {replica for t, url, _, replica in self.responses
                if t >= since and replica and "/static/" not in url and not url.endswith("/favicon.png")}

    def mark(self, step: str) -> None:
        """Start ``step``; the previous one's time goes to ``times``."""
        now = time.monotonic()
        if self.step != "not started":
            self.times[self.step] = self.times.get(self.step, 0.0) + now - self._since
        self.step, self._since = step, now

    async def describe(self) -> str:
        """Where this session is, for a failure message."""
        try:
            state = await page_state(self.page)
        except Exception as error:  # The page may be gone.
            state = repr(error)
        return (f"session {self.number} at '{self.step}' (route {await self.route()}, "
                f"sockets {self.sockets}): {state}; "
                f"last responses {[(round(t), u[-50:], s, r) for t, u, s, r in self.responses[-4:]]}")

    async def exceptions(self) -> int:
        return await self.page.locator("[data-testid=stException]").count()

    async def prepared_pixels(self) -> np.ndarray:
        """The "your digit, prepared" image, fetched with the session's cookies."""
        src = await self.page.evaluate(
            "() => { for (const box of document.querySelectorAll('[data-testid=stImage]')) {"
            " if ((box.innerText || '').trim().startsWith('your digit, prepared'))"
            " return box.querySelector('img').src; }"
            " return null; }")
        assert src, f"session {self.number}: no prepared image"
        response = await self.page.request.get(src)
        assert response.status == 200, f"session {self.number}: its image answered {response.status}"
        return np.asarray(Image.open(io.BytesIO(await response.body())).convert("L"))


def expected_prepared(png: bytes) -> np.ndarray:
    from ae_core import image_to_mnist
    from ui.images import enlarge

    return enlarge(image_to_mnist(png), 5)


async def sticky_session(session: Session, browser, url: str, digit: bytes) -> dict:
    """Choose a point and keep it over RERUNS reruns; upload a digit and keep it over RERUNS."""
    session.mark("open the map")
    await session.open(browser, f"{url}/map")
    page = session.page
    # Several maps of 10,000 WebGL points drawn in software at once share two cores with the
    # replicas: about 60 s each on a quiet machine, so twice the other steps' allowance.
    await page.wait_for_function(MAP_DRAWN, timeout=240_000)
    await page.wait_for_selector(IDLE)
    session.mark("click a point")
    index = await click_point(page, 11 * session.number)
    for _ in range(RERUNS):
        session.mark("rerun with the point")
        await rerun(page)
        # Its heading stays; its images may still be on their way, through nginx, from the replica.
        try:
            await page.wait_for_function(POINT_SHOWN, arg=index, timeout=15_000)
        except Exception:
            raise AssertionError(f"lost its point #{index}: {await session.describe()}") from None
    session.mark("switch to Your image")
    await go_to(page, "Your image", UPLOADER_SHOWN)
    name = f"digit{session.number}.png"
    session.mark("upload")
    await upload(page, name, digit)
    want = expected_prepared(digit)
    assert np.array_equal(await session.prepared_pixels(), want)
    for _ in range(RERUNS):
        session.mark("rerun with the upload")
        await rerun(page)
        assert await page.get_by_text(f"Results for your upload ({name})").count() == 1, \
            f"session {session.number} lost its upload"
        assert np.array_equal(await session.prepared_pixels(), want)
    session.mark("done")
    return {"index": index, "exceptions": await session.exceptions()}


async def survivor_goes_on(session: Session, digit: bytes) -> None:
    """A session on the surviving replica: it reruns and uploads again, on the same connection."""
    page = session.page
    await rerun(page)  # Still on "Your image", with its upload.
    assert await page.get_by_text(f"Results for your upload (digit{session.number}.png)").count() == 1
    await upload(page, f"after{session.number}.png", digit)
    assert np.array_equal(await session.prepared_pixels(), expected_prepared(digit))
    assert await session.exceptions() == 0
    assert len(session.sockets) == 1 and session.sockets[0]["closed"] is None, \
        f"session {session.number} on the surviving replica lost its connection"


async def victim_reconnects(session: Session, killed_at: float, digit: bytes, report: dict) -> None:
    """A session on the killed replica: Streamlit's reconnect within seconds, a rerun that is
    answered (by a new session on the survivor), and an upload after a reload."""
    page = session.page
    deadline = time.monotonic() + 20
    while not (session.sockets[0]["closed"] and len(session.sockets) >= 2) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert session.sockets[0]["closed"], f"session {session.number}: its websocket never closed (a hang)"
    assert len(session.sockets) >= 2, f"session {session.number}: Streamlit never reconnected"
    report.setdefault("closed", []).append(session.sockets[0]["closed"] - killed_at)
    report.setdefault("reconnected", []).append(session.sockets[1]["opened"] - killed_at)
    await rerun(page)  # Answered, by a new session on the survivor: not a hang.
    begin = time.monotonic()
    await page.reload()
    await page.wait_for_function(UPLOADER_SHOWN)
    await page.wait_for_selector(IDLE)
    await upload(page, f"again{session.number}.png", digit)
    assert np.array_equal(await session.prepared_pixels(), expected_prepared(digit))
    report.setdefault("reload_to_working", []).append(time.monotonic() - begin)
    assert await session.exceptions() == 0
    assert await session.route() == "r2", "nginx re-pins a session to the replica that now serves it"


async def new_session(session: Session, browser, url: str, digit: bytes) -> str:
    await session.open(browser, f"{url}/upload")
    await session.page.wait_for_function(UPLOADER_SHOWN)
    await session.page.wait_for_selector(IDLE)
    await upload(session.page, f"new{session.number}.png", digit)
    return await session.route()


def fresh_request(port: int, path: str = "/_stcore/health", method: str = "GET", source: str = "127.0.0.1",
                  headers: dict | None = None, body: bytes | None = None) -> tuple[int, str | None]:
    """One request on a new connection, without cookies unless given: (status, X-Replica)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("X-Replica")
    finally:
        connection.close()


@pytest.mark.slow
def test_a_replica_too_busy_to_answer_keeps_its_sessions_and_takes_no_new_ones(tmp_path):
    """A replica that stops answering its health checks but lives (stopped here; under load, a
    busy one) takes no new sessions, while the sessions pinned to it stay with it: their
    websockets are there, and their page requests sent elsewhere would find none of the
    images their pages show (404). A CI run under load saw exactly that before."""
    import psutil

    with serve(2, tmp_path / "run", interval=0.5) as served:
        port = int(served.url.rsplit(":", 1)[1])
        nginx = psutil.Process(served.nginx_pid())
        first_workers = {worker.pid for worker in nginx.children()}
        busy, other = "r1", "r2"
        address, pid = served.replicas[busy]
        os.kill(pid, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 30
            while not any(f"replica {busy} ({address}) is not answering in time" in line for line in served.lines()):
                assert time.monotonic() < deadline, served.lines()[-5:]
                time.sleep(0.1)
            # nginx reloads in the background; until its first worker has gone, that worker may
            # still take a new connection with the old upstreams.
            while first_workers & {worker.pid for worker in nginx.children()}:
                assert time.monotonic() < deadline, "nginx did not reload"
                time.sleep(0.05)
            upstreams = (served.run_dir / "upstreams.conf").read_text()
            newcomers = [fresh_request(port, "/") for _ in range(4)]
        finally:
            os.kill(pid, signal.SIGCONT)
        pinned = fresh_request(port, "/", headers={"Cookie": f"ae_route={busy}"})
    assert newcomers == [(200, other)] * 4
    assert f"    {busy} replica_{busy};" in upstreams and f"server {address} max_fails=1 fail_timeout=5s;" in upstreams
    assert pinned == (200, busy)


def flood(port: int, count: int, source: str, cookies: list[str | None]) -> list[int]:
    """``count`` small upload PUTs at once from ``source``; their statuses."""
    def one(k: int) -> int:
        cookie = cookies[k % len(cookies)]
        return fresh_request(port, f"/_stcore/upload_file/flood/{k}", "PUT", source,
                             {"Cookie": cookie} if cookie else {}, b"x" * 200)[0]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(count)))


async def scenario(served, digits: list[bytes], report: dict) -> None:
    from playwright.async_api import async_playwright

    from harness.browser import launch_chromium_async

    url, port = served.url, int(served.url.rsplit(":", 1)[1])
    async with async_playwright() as playwright:
        browser = await launch_chromium_async(playwright)
        try:
            # 1. Stickiness.
            begin = time.monotonic()
            sessions = [Session(n) for n in range(SESSIONS)]
            results = await asyncio.gather(*[sticky_session(s, browser, url, digits[s.number]) for s in sessions],
                                           return_exceptions=True)
            failed = [(s, r) for s, r in zip(sessions, results) if isinstance(r, BaseException)]
            assert not failed, "\n".join([f"{type(r).__name__}: {str(r)[:300]}\n  {await s.describe()}"
                                          for s, r in failed])
            report[f"1. {SESSIONS} sessions, {RERUNS} reruns each of a point and an upload (s)"] = time.monotonic() - begin
            assert all(r["exceptions"] == 0 for r in results)
            routes = [await s.route() for s in sessions]
            log = served.access_log()
            for session, route in zip(sessions, routes):
                assert session.replicas() == {route}, (session.number, route, session.replicas())
                assert len(session.sockets) == 1 and session.sockets[0]["closed"] is None
                served_by = {row["served_by"] for row in log if row.get("route") == route}
                assert served_by == {route}, f"the access log has route={route} served by {served_by}"
            report["sessions per replica"] = {r: routes.count(r) for r in sorted(set(routes))}
            for step in sessions[0].times:
                spent = [s.times[step] for s in sessions]
                report[f"1. {step}, all {SESSIONS} sessions (s, median / max)"] = f"{np.median(spent):.1f} / {max(spent):.1f}"
            print("\n".join(f"session {s.number}: replica {r}, {len(s.responses)} responses, point #{x['index']}"
                            for s, r, x in zip(sessions, routes, results)))
            assert set(routes) == {"r1", "r2"}, f"both replicas must be used: {routes}"

            # 2. A fault: kill -9 the replica r1 while every session is open.
            victim, survivor = "r1", "r2"
            victims = [s for s, r in zip(sessions, routes) if r == victim]
            survivors = [s for s, r in zip(sessions, routes) if r == survivor]
            killed_at = time.monotonic()
            os.kill(served.replicas[victim][1], signal.SIGKILL)
            at_once = await asyncio.to_thread(lambda: [fresh_request(port, "/") for _ in range(10)])
            assert at_once == [(200, survivor)] * 10, f"new sessions straight after the kill: {at_once}"
            upstreams = served.run_dir / "upstreams.conf"
            while not re.search(rf"server {served.replicas[victim][0]} max_fails=1 fail_timeout=5s down;",
                                upstreams.read_text()):
                assert time.monotonic() - killed_at < INTERVAL + 3, "the watcher did not take the replica out"
                await asyncio.sleep(0.05)
            report["2. kill -9 → watcher marks it down (s)"] = time.monotonic() - killed_at
            newcomers = [Session(100 + k) for k in range(2)]
            fault = {}
            new_routes = await asyncio.gather(
                *[survivor_goes_on(s, digits[SESSIONS + s.number % 4]) for s in survivors],
                *[victim_reconnects(s, killed_at, digits[SESSIONS + s.number % 4], fault) for s in victims],
                *[new_session(s, browser, url, digits[SESSIONS + 4 + k]) for k, s in enumerate(newcomers)])
            assert new_routes[-len(newcomers):] == [survivor] * len(newcomers), new_routes
            assert all(s.replicas() == {survivor} for s in newcomers), [s.replicas() for s in newcomers]
            after = {s.number: s.replicas(since=killed_at + 1) for s in sessions}
            assert all(replicas <= {survivor} for replicas in after.values()), after
            report["2. victims: websocket closed after (s, max)"] = max(fault["closed"])
            report["2. victims: Streamlit reconnected after (s, max)"] = max(fault["reconnected"])
            report["2. victims: reload → upload and click done (s, max)"] = max(fault["reload_to_working"])
            report["2. fault phase (s)"] = time.monotonic() - killed_at
            assert any("replica r1 (" in line and "is down" in line for line in served.lines())

            # 3. Limits. One browser floods its own upload route; three others upload meanwhile.
            begin = time.monotonic()
            flooder, *others = survivors + victims  # All on the survivor now, each has uploaded.
            others = others[:3]  # Each on "Your image" already.
            request = flooder.upload_requests[-1]  # Its own upload: its session, file id and XSRF token.
            token = (await request.all_headers())["x-xsrftoken"]
            flood_count = 40

            async def browser_flood() -> list[int]:
                file = {"name": "flood.png", "mimeType": "image/png", "buffer": digits[0]}
                responses = await asyncio.gather(*[flooder.page.request.put(
                    request.url, headers={"x-xsrftoken": token}, multipart={"file": file})
                    for _ in range(flood_count)])
                return [r.status for r in responses]

            async def others_upload(other: Session) -> None:
                name = f"meanwhile{other.number}.png"
                digit = digits[SESSIONS + 4 + other.number % 4]
                try:
                    await upload(other.page, name, digit)
                except AssertionError as error:  # Did the browser ask for the rerun at all?
                    sent = [(round(t - begin, 1), size) for t, size in other.sent if t >= begin]
                    raise AssertionError(f"{error}; frames sent since the phase began: {sent}; "
                                         f"{await other.describe()}") from error
                assert np.array_equal(await other.prepared_pixels(), expected_prepared(digit))

            statuses, *_ = await asyncio.gather(browser_flood(), *[others_upload(o) for o in others])
            report["3. browser flood of 40 PUTs: 429s"] = statuses.count(429)
            assert set(statuses) <= {204, 429}, statuses
            assert statuses.count(429) >= flood_count - 13, statuses
            upload_statuses = [status for other in others for t, u, status, _ in other.responses
                               if t >= begin and "/_stcore/upload_file/" in u]
            assert upload_statuses and set(upload_statuses) == {204}, upload_statuses

            # Without the cookie, one address is one browser: cut at the same point.
            cookieless = await asyncio.to_thread(flood, port, 40, "127.0.0.2", [None])
            report["3. cookieless flood of 40 from 127.0.0.2: 429s"] = cookieless.count(429)
            assert cookieless.count(429) >= 40 - 13, cookieless
            # A client inventing a cookie per request meets the per-address limit.
            invented = await asyncio.to_thread(flood, port, 150, "127.0.0.3", [f"ae_client=x{k}" for k in range(150)])
            report["3. flood of 150 with invented cookies from 127.0.0.3: 429s"] = invented.count(429)
            assert invented.count(429) >= 150 - 61 - 20, invented
            # Other clients still upload, and load pages.
            assert (await asyncio.to_thread(fresh_request, port, "/"))[0] == 200

            # Body size: the browser's largest file passes nginx; 20 MiB + 1 byte of body is refused.
            sender = others[0]
            sent = sender.upload_requests[-1]
            largest = await sender.page.request.put(sent.url, headers={
                "x-xsrftoken": (await sent.all_headers())["x-xsrftoken"]},
                multipart={"file": {"name": "largest.png", "mimeType": "image/png", "buffer": b"\0" * 20_000_000}})
            assert largest.status == 204 and largest.headers.get("x-replica") == survivor
            too_big = await asyncio.to_thread(oversized_put, port)
            assert too_big == (413, None), too_big  # From nginx: no replica saw it.
            report["3. limits phase (s)"] = time.monotonic() - begin
        finally:
            await browser.close()


def oversized_put(port: int) -> tuple[int, str | None]:
    """Headers announcing 20 MiB + 1 byte of body, and no body: nginx answers at once."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=("127.0.0.4", 0))
    try:
        connection.putrequest("PUT", "/_stcore/upload_file/any/any")
        connection.putheader("Content-Length", str(20 * 2**20 + 1))
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.getheader("X-Replica")
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.browser
def test_two_replicas_behind_nginx_stick_survive_a_kill_and_limit_floods(tmp_path, test_set):
    import psutil

    images, _ = test_set
    digits = [digit_png(images[n, ..., 0]) for n in range(SESSIONS + 8)]
    report: dict = {}
    begin = time.monotonic()
    with serve(2, tmp_path / "run", env={"AE_MODELS_DIR": str(tmp_path / "models")}, interval=INTERVAL) as served:
        report["0. serve.sh start → ready (s)"] = time.monotonic() - begin
        nginx_pid = served.nginx_pid()
        try:
            asyncio.run(asyncio.wait_for(scenario(served, digits, report), DEADLINE_SECONDS))
        finally:
            print("\n".join(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}"
                            for key, value in report.items()))
            print("\n".join(served.lines()))
        stopping = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=40) == 143
        while not served.lines()[-1].endswith("stopped.") and time.monotonic() - stopping < 45:
            time.sleep(0.1)  # The last line, read by serve()'s thread.
    stopped = time.monotonic() - stopping
    print(f"SIGTERM → serve.sh and its children gone: {stopped:.1f} s")
    children = [nginx_pid] + [pid for _, pid in served.replicas.values()]
    assert not [pid for pid in children if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE], "serve.sh left processes behind"
    assert served.lines()[-1].endswith("stopped.")
    for name in ("r1", "r2"):
        log = (tmp_path / "run" / f"replica-{name}.log").read_text()
        assert "Traceback" not in log, log[-3000:]
    problems = [line for line in (tmp_path / "run" / "error.log").read_text().splitlines()
                if re.search(r"\[(emerg|alert|crit)\]", line)]
    assert not problems, problems[:5]
