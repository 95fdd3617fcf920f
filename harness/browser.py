"""A real `streamlit run app.py` on a loopback port, and headless Chromium to drive it."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_ports(count: int) -> list[int]:
    """``count`` consecutive free loopback ports (free when asked)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count >= 65536:
            continue
        sockets = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return list(range(first, first + count))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no run of free ports")


def free_port() -> int:
    return free_ports(1)[0]


@contextlib.contextmanager
def streamlit_server(log_path: Path, timeout: float = 120.0, env: dict[str, str] | None = None,
                     folder: Path = ROOT, cores: set[int] | None = None):
    """Start ``folder``'s app.py (this project's by default) on a free loopback port; yield its
    base URL and process; stop it afterwards.

    ``env`` adds to the environment (say, ``AE_MODELS_DIR`` for models trained in a test);
    ``cores`` pins every thread of the server to those CPU cores from its start, as
    ``taskset -c`` would."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
                                   preexec_fn=None if cores is None else lambda: os.sched_setaffinity(0, cores))
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"streamlit exited early; see {log_path}")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not answer within {timeout} s")
                time.sleep(0.25)
            yield url, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def launch_chromium(playwright):
    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("Debian's chromium is not installed; test.sh installs it with apt-get.")
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)


async def launch_chromium_async(playwright):
    """The same browser for Playwright's async API (many sessions at once)."""
    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("Debian's chromium is not installed; test.sh installs it with apt-get.")
    return await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)


# JavaScript run in the page with [gap, stride]: choose a point of the latent map, among every
# stride-th, whose nearest neighbour is farthest (at least `gap` pixels from the plot's edge,
# so a click cannot hit another), and return its page coordinates and test index. Another
# stride picks another point.
PICK_ISOLATED_POINT = """
([gap, stride = 37]) => {
  const gd = document.querySelector('.js-plotly-plot');
  const layout = gd._fullLayout, box = gd.getBoundingClientRect();
  const points = [];
  gd._fullData.forEach((trace) => {
    if (!trace.customdata || trace.visible !== true) return;
    for (let i = 0; i < trace.x.length; i++) {
      // A trace's undrawn placeholder (null, null) is no point to click.
      if (!Number.isFinite(trace.x[i]) || !Number.isFinite(trace.y[i])) continue;
      points.push({px: box.left + layout.xaxis._offset + layout.xaxis.d2p(trace.x[i]),
                   py: box.top + layout.yaxis._offset + layout.yaxis.d2p(trace.y[i]),
                   index: Number(trace.customdata[i])});
    }
  });
  let best = null, bestGap = 0;
  for (let k = 0; k < points.length; k += stride) {
    const p = points[k];
    if (p.px < box.left + layout.xaxis._offset + 20 || p.py < box.top + layout.yaxis._offset + 20) continue;
    let nearest = Infinity;
    for (const q of points) {
      if (q === p) continue;
      const d = Math.hypot(p.px - q.px, p.py - q.py);
      if (d < nearest) nearest = d;
    }
    if (nearest > bestGap) { bestGap = nearest; best = p; }
  }
  return {...best, gap: bestGap, count: points.length};
}
"""
