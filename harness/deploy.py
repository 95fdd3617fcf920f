"""`deploy/serve.sh` under test: N replicas behind nginx on free loopback ports.

    with serve(replicas=2, run_dir=tmp_path) as served:   # served.url is nginx's address
        ...
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .browser import free_ports

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Served:
    """A running `deploy/serve.sh`: its URL, run folder, replicas and output so far."""

    url: str
    run_dir: Path
    process: subprocess.Popen
    replicas: dict[str, tuple[str, int]]  # name -> (address, pid)
    output: list[tuple[float, str]] = field(default_factory=list)  # (time.monotonic(), line)

    def lines(self) -> list[str]:
        return [line for _, line in self.output]

    def nginx_pid(self) -> int:
        """The pid of nginx's master process, as serve.sh announced it."""
        return int(re.search(r"nginx \(pid (\d+)\)", "\n".join(self.lines())).group(1))

    def access_log(self) -> list[dict[str, str]]:
        """nginx's access log, one dict a request: status, route, served_by, upstream, ..."""
        rows = []
        for line in (self.run_dir / "access.log").read_text().splitlines():
            request = re.search(r'"([^"]*)"', line)
            row = dict(re.findall(r"(\w+)=(\S+)", line[request.end():] if request else line))
            row["request"] = request.group(1) if request else ""
            row["status"] = line[request.end():].split()[0] if request else ""
            row["client"] = line.split()[1]
            rows.append(row)
        return rows


@contextlib.contextmanager
def serve(replicas: int, run_dir: Path, env: dict[str, str] | None = None, interval: float = 2,
          timeout: float = 300):
    """Start ``bash deploy/serve.sh --replicas N`` on free loopback ports; yield a ``Served``
    once it says it is ready; stop it with SIGTERM (as Ctrl-C would) afterwards."""
    port, *_ = ports = free_ports(replicas + 1)
    command = ["bash", str(ROOT / "deploy" / "serve.sh"), "--replicas", str(replicas), "--port", str(port),
               "--replica-port", str(ports[1]), "--run-dir", str(run_dir), "--check-interval", str(interval)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "AE_PYTHON": sys.executable, **(env or {})},
                               start_new_session=True)
    served = Served(f"http://127.0.0.1:{port}", run_dir, process, {})
    ready = threading.Event()

    def read() -> None:
        for line in process.stdout:
            served.output.append((time.monotonic(), line.rstrip("\n")))
            if " ready: " in line:
                ready.set()
        ready.set()  # It ended.

    threading.Thread(target=read, daemon=True).start()
    try:
        if not ready.wait(timeout) or process.poll() is not None:
            raise RuntimeError("serve.sh did not get ready:\n" + "\n".join(served.lines()[-20:]))
        for line in (run_dir / "replicas").read_text().splitlines():
            name, address, pid = line.split()
            served.replicas[name] = (address, int(pid))
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # Its own group: serve.sh and its children.
                process.wait()
