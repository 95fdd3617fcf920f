"""A classroom against one replica and against two: `deploy/serve.sh` (nginx in front), 40
browser sessions at once, each loading the latent map, clicking 5 points and uploading one
digit; optionally, with two replicas, one of them killed while a third classroom works.

    python -m benchmarks.replicas                  # 40 sessions, 1 replica then 2 (~20 min here)
    python -m benchmarks.replicas --sessions 10    # a quick look
    python -m benchmarks.replicas --fault          # and a third run, killing one of 2 replicas

Writes benchmarks/results/replicas.md and prints it. A benchmark, not a test: nothing here
asserts. `harness.deploy.serve()` starts serve.sh here and in tests/test_deploy.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from harness.deploy import Served, serve
from harness.pages import IDLE, MAP_DRAWN, POINT_SHOWN, UPLOADER_SHOWN, digit_png, go_to, upload

ROOT = Path(__file__).resolve().parent.parent
def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) in seconds."""
    return (float(np.percentile(samples, 50)), float(np.percentile(samples, 95))) if samples else (np.nan, np.nan)


async def classroom_session(browser, url: str, number: int, digit: bytes, start_after: float,
                            clicks: int = 5, timeout: float = 240, recover: bool = False) -> dict:
    """One student: load the map, click ``clicks`` points, switch to "Your image", upload one
    digit. Returns each action's seconds, or the error that stopped it. With ``recover``, a
    student whose page fails reloads it once and starts again (as after a replica's crash)."""
    from harness.browser import PICK_ISOLATED_POINT

    await asyncio.sleep(start_after)
    context = await browser.new_context(viewport={"width": 1500, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(timeout * 1000)
    replicas = set()
    page.on("response", lambda response: replicas.add(response.headers.get("x-replica")))
    result = {"session": number, "map": None, "clicks": [], "upload": None, "error": None, "reloaded": None}
    for attempt in range(2 if recover else 1):
        result.update(map=None, clicks=[], upload=None, error=None)
        try:
            begin = time.perf_counter()
            await page.goto(f"{url}/map")
            await page.wait_for_function(MAP_DRAWN)
            await page.wait_for_selector(IDLE)
            result["map"] = time.perf_counter() - begin
            for click in range(clicks):
                target = await page.evaluate(PICK_ISOLATED_POINT, [6, 37 + 11 * number + 5 * click])
                await page.mouse.move(target["px"], target["py"])
                await page.wait_for_timeout(300)  # Plotly's hover must register first; not timed.
                begin = time.perf_counter()
                await page.mouse.click(target["px"], target["py"])
                await page.wait_for_function(POINT_SHOWN, arg=target["index"], polling="raf")
                result["clicks"].append(time.perf_counter() - begin)
                await page.wait_for_selector(IDLE)
            await go_to(page, "Your image", UPLOADER_SHOWN)
            begin = time.perf_counter()
            await upload(page, f"digit{number}.png", digit)
            result["upload"] = time.perf_counter() - begin
            if await page.locator("[data-testid=stException]").count():
                result["error"] = "an exception on the page"
            break
        except Exception as error:  # A benchmark reports failures; it does not stop at them.
            result["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
            if recover and attempt == 0:
                result["reloaded"] = result["error"]
    result["replicas"] = sorted(r for r in replicas if r)
    await context.close()
    return result


async def classroom(url: str, sessions: int, digits: np.ndarray, spread: float, during=None,
                    timeout: float = 240, recover: bool = False) -> list[dict]:
    """``sessions`` students arriving over ``spread`` seconds; ``during(started)`` runs alongside."""
    from playwright.async_api import async_playwright

    from harness.browser import launch_chromium_async

    async with async_playwright() as playwright:
        browser = await launch_chromium_async(playwright)
        try:
            work = [classroom_session(browser, url, n, digit_png(digits[n % len(digits)]),
                                      spread * n / max(sessions - 1, 1), timeout=timeout,
                                      recover=recover)
                    for n in range(sessions)]
            if during is not None:
                work.append(during(time.monotonic()))
            results = await asyncio.gather(*work)
        finally:
            await browser.close()
    return [r for r in results if isinstance(r, dict) and "session" in r]


def summarise(label: str, results: list[dict], wall: float) -> list[str]:
    ok = [r for r in results if r["error"] is None]
    maps = [r["map"] for r in results if r["map"] is not None]
    clicks = [c for r in results for c in r["clicks"]]
    uploads = [r["upload"] for r in results if r["upload"] is not None]
    rows = []
    for action, samples in (("load the map", maps), ("click a point → its 3 images", clicks),
                            ("upload a digit → its results", uploads)):
        p50, p95 = percentiles(samples)
        rows.append(f"| {label} | {action} | {len(samples)} | {p50:.2f} s | {p95:.2f} s |")
    touched = {}
    for r in results:
        for name in r["replicas"]:
            touched[name] = touched.get(name, 0) + 1
    errors = sorted({r["error"] for r in results if r["error"]})
    reloaded = [r for r in results if r["reloaded"]]
    rows.append(f"| {label} | sessions that finished without an error | {len(ok)} of {len(results)}"
                f"{f' ({sum(r in ok for r in reloaded)} after one reload)' if reloaded else ''} | "
                f"wall {wall:.0f} s | sessions served by each replica: "
                f"{', '.join(f'{k} {v}' for k, v in sorted(touched.items())) or '–'} |")
    if errors:
        rows.append(f"| {label} | errors | {len(results) - len(ok)} | – | {'; '.join(errors)[:300]} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replicas", description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--spread", type=float, default=10.0, help="seconds over which the sessions arrive")
    parser.add_argument("--fault", action="store_true",
                        help="then run the classroom once more on 2 replicas, killing one 20 s in")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "replicas.md"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import tempfile

    import ae_core
    from benchmarks.__main__ import machine

    images, _ = ae_core.load_mnist("test")
    digits = images[:args.sessions, ..., 0]
    rows = ["| replicas | action | count | p50 | p95 |", "|---|---|---|---|---|"]
    notes = []
    for replicas in (1, 2):
        with tempfile.TemporaryDirectory(prefix="replicas-") as folder, \
                serve(replicas, Path(folder) / "run", env={"AE_MODELS_DIR": str(Path(folder) / "models")}) as served:
            asyncio.run(classroom(served.url, 2, digits, 0))  # Warm: each replica imports TensorFlow once.
            notes.append(f"Load average of the machine before the {replicas}-replica run: "
                         f"{os.getloadavg()[0]:.1f} (a run's own load decays over minutes).")
            begin = time.perf_counter()
            results = asyncio.run(classroom(served.url, args.sessions, digits, args.spread))
            wall = time.perf_counter() - begin
            rows += summarise(f"{replicas}", results, wall)
            print("\n".join(rows), flush=True)
            if replicas == 2 and args.fault:
                rows += fault_run(served, args, digits, notes)
                print("\n".join(rows), flush=True)
    command = f"python -m benchmarks.replicas --sessions {args.sessions}{' --fault' if args.fault else ''}"
    report = (f"Measured by `{command}` on {time.strftime('%Y-%m-%d')}: "
              f"{machine()}; nginx {nginx_version()} in front (deploy/serve.sh), one headless Chromium on the same "
              f"2 cores driving every session. {args.sessions} sessions arrive over {args.spread:.0f} s; each loads "
              f"/map in a fresh browser context, clicks 5 points, switches to \"Your image\" and uploads one digit. "
              f"Times are from the action to its result drawn in the page.\n\n" + "\n".join(rows) + "\n"
              + ("\n" + "\n".join(notes) + "\n" if notes else ""))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    print(report)


def fault_run(served: Served, args, digits, notes: list[str]) -> list[str]:
    """The same classroom on two replicas, with one replica killed (SIGKILL) 20 s in; a
    student whose page then fails reloads it once and starts again."""
    killed = {}

    async def kill_one(started: float) -> None:
        await asyncio.sleep(max(0.0, started + 20 - time.monotonic()))
        name, (address, pid) = next(iter(served.replicas.items()))
        os.kill(pid, signal.SIGKILL)
        killed.update(name=name, at=time.monotonic())

    begin = time.perf_counter()
    results = asyncio.run(classroom(served.url, args.sessions, digits, args.spread, during=kill_one,
                                    timeout=60, recover=True))
    wall = time.perf_counter() - begin
    victims = [r for r in results if killed.get("name") in r["replicas"]]
    others = [r for r in results if killed.get("name") not in r["replicas"]]
    notes.append(f"In the fault run, replica {killed.get('name')} was killed with SIGKILL 20 s after the first "
                 f"session started, and each step waited at most 60 s. Of the {len(others)} sessions served "
                 f"only by the other replica, {sum(r['error'] is None for r in others)} finished, "
                 f"{sum(bool(r['reloaded']) for r in others)} of them after a reload. Of the {len(victims)} "
                 f"sessions that had been on the killed replica, {sum(bool(r['reloaded']) for r in victims)} "
                 f"saw a step fail (Streamlit reconnects them to the survivor, in a new session without "
                 f"their state) and reloaded, and {sum(r['error'] is None for r in victims)} finished. "
                 f"The fault run's times include the reloaded sessions' second pass. With one replica, the "
                 f"same kill leaves no replica to reconnect to: every session stops.")
    return summarise("2, one killed", results, wall)


def nginx_version() -> str:
    try:
        text = subprocess.run(["nginx", "-v"], capture_output=True, text=True,
                              env={**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"}).stderr
    except OSError:
        return "(not found)"
    return text.strip().split("/")[-1]


if __name__ == "__main__":
    main()
