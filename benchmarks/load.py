"""The load test's runner: the app under 10, 20 and 40 simulated students (benchmarks/locustfile.py,
Locust speaking Streamlit's websocket protocol), on one replica pinned to one core and on two
replicas behind nginx; then 20 sessions opening the map at once.

    AE_DATA_DIR=../shared python -m benchmarks.load          # the benchmark (~10 min)
    AE_DATA_DIR=../shared python -m benchmarks.load --setups one-core --users 5 \\
        --run-time 30 --no-rush --out /tmp/load.md                # a quick look (~1.5 min)

Writes benchmarks/results/load.md and prints it: per configuration, p50/p95 of each action,
failures, requests/s and where the CPU went; the machine and the commit; and how many users
one core holds (the largest user count whose run on the one-core replica keeps the map's
p95 within 3 s, the slider's within 150 ms, and fails no action).

Run it on a quiet machine. It measures the CPU that other processes used during each run,
and if they used more than a quarter of a core (a training, a test suite) it heads the
results "validation run on a busy machine: not the benchmark". A benchmark, not a test:
nothing here asserts. Every load goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.replicas import serve  # noqa: E402
from harness.browser import streamlit_server  # noqa: E402
from harness.protocol import Session, point_selection  # noqa: E402

LOCUSTFILE = ROOT / "benchmarks" / "locustfile.py"
MAP_P95_TARGET_MS = 3000
SLIDER_P95_TARGET_MS = 150
BUSY_CORES = 0.25  # Other processes' average CPU above which a run is not a benchmark.
# The order of the tables' rows: a student's actions, page by page.
ACTIONS = ["open map", "click", "radio: background", "slider: density", "open sliders", "slider",
           "open upload", "upload", "open grid", "open paths", "open train", "reload", "connect"]


@dataclass
class Setup:
    """A running server to load: its URL, the processes whose CPU is the server's, and the
    cores Locust is confined to (None: all)."""

    name: str
    description: str
    url: str
    server_processes: list[psutil.Process]
    locust_cores: set[int] | None
    watcher: Callable[[], list[str]] = lambda: []  # serve.sh's lines since it said "ready".


@dataclass
class Measured:
    """One Locust run: its statistics per action, its failures, and where the CPU went."""

    users: int
    seconds: float
    rows: dict[str, dict[str, str]]  # Locust's stats CSV, one row per action name, and "Aggregated".
    failures: list[tuple[str, str, int]]  # (action, error, occurrences)
    cores: dict[str, float] = field(default_factory=dict)  # "server", "Locust", "others": average cores
    load_before: float = 0.0
    crash: str = ""  # How Locust itself failed, if it did (then there are no statistics).

    def p95(self, action: str) -> float | None:
        row = self.rows.get(action)
        return float(row["95%"]) if row and row["Request Count"] != "0" and row["95%"] != "N/A" else None


def wait_for_health(url: str, process: subprocess.Popen, log: Path, timeout: float = 180, answers: int = 1) -> None:
    """Until ``answers`` health checks in a row say 200 (through nginx: one per replica)."""
    deadline, good = time.monotonic() + timeout, 0
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited while starting; see {log}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                good = good + 1 if response.status == 200 else 0
        except OSError:
            good = 0
        if good >= answers:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not answer /_stcore/health within {timeout:.0f} s; see {log}")
        time.sleep(0.25)


@contextlib.contextmanager
def one_replica_on_one_core(folder: Path):
    """``streamlit run app.py`` with every thread pinned to core 0; Locust gets the rest."""
    with streamlit_server(folder / "one-core.log", env={"AE_MODELS_DIR": str(folder / "models")},
                          timeout=180, cores={0}) as (url, process):
        others = set(range(1, os.cpu_count() or 1)) or None
        yield Setup("one-core", "1 replica (`streamlit run app.py`) pinned to core 0; Locust pinned to "
                    f"{'core 1' if others == {1} else 'the other cores' if others else 'the same core'}",
                    url, [psutil.Process(process.pid)], others)


@contextlib.contextmanager
def two_replicas(folder: Path):
    """``bash deploy/serve.sh --replicas 2``: nginx and two replicas sharing both cores, with
    Locust (as benchmarks/replicas.py starts and stops it)."""
    with serve(2, folder / "serve", env={"AE_MODELS_DIR": str(folder / "models")}) as served:
        # serve.sh says "ready" as it signals nginx to reload with the replicas up; until the
        # new workers take over, the old ones answer 502.
        wait_for_health(served.url, served.process, folder / "serve", answers=4)
        root = psutil.Process(served.process.pid)

        def since_ready() -> list[str]:
            lines = served.lines()
            ready = next((i for i, line in enumerate(lines) if " ready: " in line), len(lines))
            return lines[ready + 1:]

        try:
            yield Setup("two-replicas", "2 replicas behind nginx (`deploy/serve.sh --replicas 2`), unpinned: "
                        "the replicas, nginx and Locust share both cores", served.url,
                        [root, *root.children(recursive=True)], None, since_ready)
        finally:
            (folder / "serve" / "serve.sh.log").write_text("\n".join(served.lines()) + "\n")


SETUPS = {"one-core": (one_replica_on_one_core, 1), "two-replicas": (two_replicas, 2)}


def warm_up(url: str, sessions: int) -> None:
    """Open every page once per session (nginx sends each new session to the next replica),
    so that no run pays for a replica's first TensorFlow import and model loads."""
    for _ in range(sessions):
        with Session(url, timeout=180) as session:
            view = session.open("map")
            session.set_value(view.widget("plotly_chart", "map_chart"), point_selection(view.chart_points("map_chart", session)[0]))
            view = session.set_value(view.widget("radio", "Under the points"), "digits")
            session.set_value(view.widget("slider", "density"), 30)
            for page in ("sliders", "upload", "grid", "paths", "train"):
                session.open(page)


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def busy_seconds() -> float:
    """The whole machine's CPU seconds not idle (all cores), since boot."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def run_locust(setup: Setup, users: int, seconds: int, folder: Path, rush: bool = False) -> Measured:
    """Locust headless, all ``users`` spawned at once, for ``seconds``; its CSV read back."""
    prefix = folder / f"{setup.name}-{users}{'-rush' if rush else ''}"
    # --stop-timeout: at the end a student finishes its action and stops at its next think; one
    # killed in the middle of reading its socket could abort gevent's event loop (libev's
    # "I/O watcher with invalid fd" assertion) as Locust shut down.
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users),
               "-r", str(users), "--run-time", f"{seconds}s", "--host", setup.url, "--csv", str(prefix),
               "--only-summary", "--stop-timeout", "30", "--exit-code-on-error", "0", *(["--rush"] if rush else [])]
    load_before = os.getloadavg()[0]
    server_before, machine_before, began = cpu_seconds(setup.server_processes), busy_seconds(), time.monotonic()
    cores = setup.locust_cores
    with open(f"{prefix}.log", "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None)
        locust, locust_seconds = psutil.Process(process.pid), 0.0
        while process.poll() is None:  # Its CPU, read until it exits (then it cannot be read).
            locust_seconds = max(locust_seconds, cpu_seconds([locust]))
            time.sleep(0.5)
    wall = time.monotonic() - began
    server = cpu_seconds(setup.server_processes) - server_before
    machine = busy_seconds() - machine_before
    cores = {"server": server / wall, "Locust": locust_seconds / wall,
             "others": max(0.0, machine - server - locust_seconds) / wall}
    output = Path(f"{prefix}.log").read_text(errors="replace")
    crash = ""
    if process.returncode != 0:  # Reported, not raised: the other configurations still run.
        last = output.strip().splitlines()[-1:] or ["(no output)"]
        crash = f"Locust itself stopped with exit code {process.returncode} ({last[0][:160]}); see {prefix}.log"
        # Its statistics file, written every second, is whole if it stopped after the run's time.
        if "--run-time limit reached" not in output or not Path(f"{prefix}_stats.csv").is_file():
            return Measured(users, seconds, {}, [], cores, load_before, crash=crash)
    with open(f"{prefix}_stats.csv") as file:
        rows = {row["Name"]: row for row in csv.DictReader(file)}
    with open(f"{prefix}_failures.csv") as file:
        failures = [(row["Name"], row["Error"], int(row["Occurrences"])) for row in csv.DictReader(file)]
    return Measured(users, seconds, rows, failures, cores, load_before, crash=crash)


def milliseconds(value: str | float | None) -> str:
    """A time in milliseconds (as Locust's CSV gives it) for the tables."""
    if value is None or value in ("", "N/A"):
        return "–"
    ms = float(value)
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms"


def table(setup: Setup, runs: list[Measured]) -> list[str]:
    lines = ["| users | action | count | failed | p50 | p95 | requests/s | kB received each |",
             "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        names = [name for name in ACTIONS if name in run.rows] + \
                sorted(name for name in run.rows if name not in ACTIONS and name != "Aggregated")
        for name in names:
            row = run.rows[name]
            lines.append(f"| {run.users} | {name} | {row['Request Count']} | {row['Failure Count']} | "
                         f"{milliseconds(row['50%'])} | {milliseconds(row['95%'])} | {float(row['Requests/s']):.2f} | "
                         f"{float(row['Average Content Size']) / 1000:.0f} |")
        total = run.rows.get("Aggregated")
        if total is None:
            continue  # Locust stopped without statistics: the notes below say so.
        lines.append(f"| {run.users} | **all actions** | {total['Request Count']} | {total['Failure Count']} | "
                     f"{milliseconds(total['50%'])} | {milliseconds(total['95%'])} | **{float(total['Requests/s']):.2f}** | "
                     f"{float(total['Average Content Size']) / 1000:.0f} |")
    lines.append("")
    for run in runs:
        if run.crash:
            lines.append(f"- {run.users} users: **{'figures to its last second, but ' if run.rows else 'no figures: '}"
                         f"{run.crash}**")
        lines.append(f"- {run.users} users, {run.seconds} s: CPU used on average by the server "
                     f"{run.cores['server']:.2f} cores, Locust {run.cores['Locust']:.2f}, other processes "
                     f"{run.cores['others']:.2f}; load average before the run {run.load_before:.1f}.")
        for action, error, count in run.failures:
            lines.append(f"  - failed {count}× {action}: {error[:200]}")
    return lines


def one_core_capacity(runs: list[Measured]) -> str:
    """The largest user count on one core meeting both targets without a failed action."""
    def meets(run: Measured) -> bool:
        map_p95, slider_p95 = run.p95("open map"), run.p95("slider")
        failed = int(run.rows.get("Aggregated", {}).get("Failure Count", "1"))  # No statistics: a miss.
        return (map_p95 is not None and slider_p95 is not None and failed == 0
                and map_p95 <= MAP_P95_TARGET_MS and slider_p95 <= SLIDER_P95_TARGET_MS)

    tested = sorted(runs, key=lambda run: run.users)
    passing = [run.users for run in tested if meets(run)]
    verdicts = ", ".join(f"{run.users}: map p95 {milliseconds(run.p95('open map'))}, slider p95 "
                         f"{milliseconds(run.p95('slider'))}, "
                         f"{run.rows.get('Aggregated', {}).get('Failure Count', '?')} failed "
                         f"({'meets' if meets(run) else 'misses'})" for run in tested)
    if not passing:
        answer = f"fewer than {tested[0].users} users (the fewest tested)"
    elif passing[-1] == tested[-1].users:
        answer = f"at least {passing[-1]} users (the most tested)"
    else:
        answer = f"{passing[-1]} users (the next count tested, {[r.users for r in tested if r.users > passing[-1]][0]}, misses)"
    return (f"**Users one core holds: {answer}.** Method: the largest user count whose run on the "
            f"one-core replica kept the map's p95 within {MAP_P95_TARGET_MS / 1000:g} s and the slider's "
            f"(sliders page) within {SLIDER_P95_TARGET_MS} ms with no failed action; the counts tested "
            f"are the run's, so the answer is only as fine as they are. Per count: {verdicts}.")


def machine() -> str:
    # Versions from the installed metadata: importing locust here would monkey-patch this process.
    return (f"{platform.machine()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
            f"Python {platform.python_version()}, Streamlit {metadata.version('streamlit')}, "
            f"Locust {metadata.version('locust')}, no GPU")


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"{git('rev-parse', '--short', 'HEAD') or 'unknown'}{' with uncommitted changes' if dirty else ''}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n")[0])
    parser.add_argument("--setups", nargs="+", choices=list(SETUPS), default=list(SETUPS))
    parser.add_argument("--users", nargs="+", type=int, default=[10, 20, 40])
    parser.add_argument("--run-time", type=int, default=75, help="seconds per configuration")
    parser.add_argument("--rush-users", type=int, default=20)
    parser.add_argument("--rush-time", type=int, default=40, help="seconds of the rush run")
    parser.add_argument("--no-rush", action="store_true", help="skip the 'open the map at once' run")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "load.md"))
    args = parser.parse_args()
    if not os.environ.get("AE_DATA_DIR"):
        raise SystemExit("Set AE_DATA_DIR to the folder holding mnist/ and fashion_mnist/ (the app and the "
                         "uploads read it), e.g. AE_DATA_DIR=../shared python -m benchmarks.load.")
    started, measured_commit = time.monotonic(), commit()  # The code that runs, whatever changes meanwhile.
    sections, busy = [], []
    folder = Path(tempfile.mkdtemp(prefix="load-"))  # Kept: Locust's logs and CSVs, the servers' logs.
    print(f"Logs and Locust's CSVs go to {folder}", flush=True)
    for name in args.setups:
        start, replicas = SETUPS[name]
        print(f"{name}: starting the server ...", flush=True)
        with start(folder) as setup:
            warm_up(setup.url, 2 * replicas)
            runs = []
            for users in args.users:
                print(f"{name}: {users} users for {args.run_time} s ...", flush=True)
                runs.append(run_locust(setup, users, args.run_time, folder))
                time.sleep(5)  # The last run's sockets close.
            busy += [f"{name}, {run.users} users: {run.cores['others']:.2f}" for run in runs
                     if run.cores["others"] > BUSY_CORES]
            lines = [f"## {setup.description}", "", *table(setup, runs)]
            # A replica the watcher took out sends its sessions' images and uploads to the other.
            changes = [line for line in setup.watcher() if " is down" in line or " is up" in line]
            if changes:
                lines += ["", "serve.sh's health watcher during these runs (its sessions' requests go to the "
                          "other replica while one is out):", *[f"- `{line}`" for line in changes]]
            if name == "one-core":
                lines += ["", one_core_capacity(runs)]
                if not args.no_rush:
                    print(f"{name}: {args.rush_users} sessions open the map at once ...", flush=True)
                    rush = run_locust(setup, args.rush_users, args.rush_time, folder, rush=True)
                    busy += [f"rush: {rush.cores['others']:.2f}"] if rush.cores["others"] > BUSY_CORES else []
                    lines += ["", f"## {args.rush_users} sessions open the map at once (the one-core replica)", "",
                              f"All {args.rush_users} students connect, wait for each other, and open the map "
                              f"in the same instant; then each visits the sliders page and moves z1 or z2 "
                              f"with 1 to 3 s of thinking, for the rest of the {args.rush_time} s. "
                              f"**Map p95 {milliseconds(rush.p95('open map'))}, slider p95 "
                              f"{milliseconds(rush.p95('slider'))}.**", "", *table(setup, [rush])]
            sections += [*lines, ""]
    minutes = (time.monotonic() - started) / 60
    command = "python -m benchmarks.load" + ("" if sys.argv[1:] == [] else " " + " ".join(sys.argv[1:]))
    heading = ["# Load test: students speaking Streamlit's protocol (Locust)", ""]
    if busy:
        heading += ["**Validation run on a busy machine: not the benchmark.** Other processes used more than "
                    f"{BUSY_CORES} of a core on average during: {'; '.join(busy)} (cores). Run it again on a "
                    "quiet machine.", ""]
    heading += [f"Measured by `{command}` ({minutes:.0f} min) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                f"commit {measured_commit}: {machine()}. Logs and Locust's CSVs were kept in {folder}.", "",
                "Each simulated student ([benchmarks/locustfile.py](../locustfile.py)) loads the app as a browser "
                "does and visits pages with 1 to 3 s of thinking between actions: the map (two clicks on points, "
                "the decoded digits under the points, the background density slider), the sliders page (four "
                "moves of z1 or z2), \"Your image\" (an MNIST digit uploaded), the grid, paths or train page, "
                "or a reload (a new websocket session). All students start at once. A time runs from the "
                "message sent to the end of the server's run and the images it shows fetched (the browser's "
                "drawing is not in it); percentiles "
                "are Locust's, rounded to two significant figures above 100 ms. \"slider\" is the sliders page "
                "(target p95 ≤ 150 ms); \"slider: density\" redraws the map's background. kB received: "
                "over the socket and in images, with the browser's message cache.", ""]
    report = "\n".join(heading + sections).rstrip() + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
