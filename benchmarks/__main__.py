"""The performance benchmark: every timing the docs quote, measured on this machine in one run,
each beside the path it replaces where there is one (the article's ``predict``, the slider's
round trip to the server).

    python -m benchmarks                 # quick: training for 3 epochs per recipe (~15 min)
    python -m benchmarks --full          # the article's 12 epochs (~45 min on 2 cores)
    python -m benchmarks --skip-training # inference and browser only (~4 min)

Writes benchmarks/results/performance.md (linked from docs/performance.md) and prints it. This
is a benchmark, not a test: nothing here asserts, and the tests hold no timing checks.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from harness.pages import IDLE

ROOT = Path(__file__).resolve().parent.parent


def percentiles(samples_seconds: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    values = np.asarray(samples_seconds) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def repeat(function, count: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        function()
    timings = []
    for _ in range(count):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return timings


def inference_rows() -> list[tuple]:
    """Autoencoder.decode/encode against the article's predict() on the same models."""
    import ae_core
    from ae_core.config import WINDOW
    from ae_core.explore import latent_grid

    model = ae_core.load_autoencoder(2)
    decoder, encoder = model._decoder, model._encoder  # The same Keras models, for predict().
    one = np.zeros((1, 2), dtype=np.float32)
    grid, _, _ = latent_grid(10, *WINDOW)
    images, _ = ae_core.load_mnist("test")
    rows = []
    ours = percentiles(repeat(lambda: model.decode(one), 300))
    article = percentiles(repeat(lambda: decoder.predict(one, verbose=0), 40))
    eager = percentiles(repeat(lambda: decoder(one, training=False), 100))
    rows.append(("decode one point", ours, article, "decoder.predict", "≤ 2.5 ms p50, ≥ 30× predict"))
    rows.append(("decode one point, eager `decoder(z)`", eager, article, "decoder.predict", "(for reference)"))
    ours = percentiles(repeat(lambda: model.decode(grid), 100))
    article = percentiles(repeat(lambda: decoder.predict(grid, verbose=0), 30))
    rows.append(("decode the 10×10 grid", ours, article, "decoder.predict", "≤ 15 ms"))
    ours = percentiles(repeat(lambda: model.encode(images), 10, warmup=2))
    article = percentiles(repeat(lambda: encoder.predict(images, verbose=0), 5, warmup=1))
    rows.append(("encode the 10,000 test images", ours, article, "encoder.predict", "≤ 1 s"))
    return rows


def browser_rows(sessions: int = 5) -> list[tuple]:
    """Slider, click, page switch, cold start and memory against a real `streamlit run`."""
    import psutil
    from playwright.sync_api import sync_playwright

    from benchmarks.cold_start import ALL_POINTS, click_seconds, slider_key_seconds
    from harness.browser import launch_chromium, streamlit_server

    rows = []
    log = Path(tempfile.mkdtemp(prefix="benchmark-")) / "streamlit.log"
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        page.set_default_timeout(120_000)
        started = time.perf_counter()
        with streamlit_server(log) as (url, process):
            page.goto(f"{url}/map")
            page.wait_for_function(ALL_POINTS)
            page.wait_for_selector(IDLE)
            cold = time.perf_counter() - started
            rows.append(("server start → map drawn, first visit", (cold * 1000, cold * 1000), None, None, "≤ 12 s"))

            clicks = click_seconds(page, 12)
            rows.append(("click a map point → its 3 images drawn", percentiles(clicks), None, None, "≤ 400 ms p50"))
            moves = slider_key_seconds(page, url, 25)
            rows.append(("move a slider → new digit drawn (server round trip)", percentiles(moves), None, None,
                         "≤ 300 ms p50"))
            rows += live_rows(page, url, process)

            switches = []
            targets = [("Decoded grid", "() => { const gd = document.querySelector('.js-plotly-plot');"
                                        " return gd && gd._fullData && gd._fullData[0].type === 'heatmap'; }"),
                       ("Latent map", "() => { const gd = document.querySelector('.js-plotly-plot');"
                                      " return gd && gd._fullData && gd._fullData.length >= 10; }"),
                       ("Sliders", "() => !!document.querySelector('[data-testid=stSlider]')"),
                       ("Your image", "() => !!document.querySelector('[data-testid=stFileUploader]')")]
            for _ in range(3):
                for name, ready in targets:
                    begin = time.perf_counter()
                    page.locator("[data-testid=stTopNavLink]", has_text=name).click()
                    page.wait_for_function(ready, polling="raf")
                    page.wait_for_selector(IDLE)
                    switches.append(time.perf_counter() - begin)
            rows.append(("switch page, warm", percentiles(switches[4:]), None, None, "≤ 1 s"))

            others = []
            for index in range(sessions - 1):
                other = browser.new_page(viewport={"width": 1500, "height": 1000})
                other.goto(f"{url}/{['map', 'sliders', 'grid', 'upload'][index % 4]}")
                other.wait_for_selector(IDLE, timeout=120_000)
                others.append(other)
            rss = psutil.Process(process.pid).memory_info().rss / 2**30
            rows.append((f"server RSS with {sessions} sessions open", f"{rss:.2f} GB", None, None,
                         "≤ 1.5 GB"))
        browser.close()
    return rows


# For each pointer move, the time from its input event to the start of the animation frame
# after it: what the browser takes before any view can paint.
FRAME_FLOOR = """() => { window.__floor = []; document.addEventListener('pointermove', (event) => {
  requestAnimationFrame((frameStart) => window.__floor.push(frameStart - event.timeStamp)); },
  {capture: true, passive: true}); }"""

# Counts animation frames from inside the page, for a frame rate that is the browser's own.
COUNT_FRAMES = """() => { window.__frames = 0; const tick = () => { window.__frames++;
  requestAnimationFrame(tick); }; requestAnimationFrame(tick); }"""


def live_rows(page, url: str, process) -> list[tuple]:
    """Decoding in the browser (ui/live): latency, frame rate, server work, start-up, bytes."""
    import psutil

    import ae_core
    from ae_core.export import decoder_bundle

    rows = []
    server = psutil.Process(process.pid)
    page.goto(f"{url}/map")
    ready = ("() => { const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');"
             " return gd && gd._fullLayout && gd._fullLayout.xaxis._length > 0; }")
    page.wait_for_function(ready, polling="raf")
    drawn = time.perf_counter()
    area = page.evaluate("() => { const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');"
                         " const b = gd.getBoundingClientRect(), x = gd._fullLayout.xaxis, y = gd._fullLayout.yaxis;"
                         " return {left: b.left + x._offset, top: b.top + y._offset, width: x._length, height: y._length}; }")
    canvas = page.locator(".st-key-live_map_hover canvas.digit")
    page.mouse.move(area["left"] + area["width"] / 2, area["top"] + area["height"] / 2)
    page.wait_for_function("(c) => Number(c.dataset.frames) > 0", arg=canvas.element_handle(), polling="raf")
    first = time.perf_counter() - drawn
    rows.append(("map drawn → first live decode under the pointer", (first * 1000,) * 2, None, None, "≤ 1 s"))

    page.wait_for_selector(IDLE)
    page.evaluate(FRAME_FLOOR)
    rng = np.random.default_rng(0)
    latencies = []
    cpu_before = sum(server.cpu_times()[:2])
    for _ in range(200):
        frames = int(canvas.get_attribute("data-frames"))
        x, y = rng.uniform(0.05, 0.95, size=2)
        page.mouse.move(area["left"] + x * area["width"], area["top"] + y * area["height"])
        page.wait_for_function("([c, n]) => Number(c.dataset.frames) > n",
                               arg=[canvas.element_handle(), frames], polling="raf")
        latencies.append(float(canvas.get_attribute("data-latency-ms")) / 1000)
    cpu = sum(server.cpu_times()[:2]) - cpu_before
    rows.append(("hover: pointer move → digit painted (input event to its frame's paint)",
                 percentiles(latencies), None, None, "≤ 16 ms p50, ≤ 20 ms p95"))
    floor = page.evaluate("() => window.__floor.slice(-200)")
    rows.append(("the browser's own part: the same moves → the start of their frame, no decoding",
                 percentiles([value / 1000 for value in floor]), None, None, "for reference"))
    rows.append(("server CPU during those 200 hovers", f"{cpu:.2f} s", None, None, "≈ 0"))

    page.goto(f"{url}/sliders?z1=-3&z2=3")
    pad = page.locator(".st-key-live_pad canvas.pad")
    pad.wait_for()
    page.wait_for_selector(IDLE)
    box = pad.bounding_box()
    page.evaluate(COUNT_FRAMES)
    decodes_before = int(page.locator(".st-key-live_pad canvas.digit").get_attribute("data-frames"))
    page.mouse.move(box["x"] + 60, box["y"] + 60)
    page.mouse.down()
    start = time.perf_counter()
    frames_before = page.evaluate("() => window.__frames")
    step = 0
    while time.perf_counter() - start < 2.0:
        step += 1
        angle = step / 20
        page.mouse.move(box["x"] + 160 + 90 * np.cos(angle), box["y"] + 150 + 90 * np.sin(angle))
    elapsed = time.perf_counter() - start
    frames = page.evaluate("() => window.__frames") - frames_before
    decodes = int(page.locator(".st-key-live_pad canvas.digit").get_attribute("data-frames")) - decodes_before
    page.mouse.up()
    rows.append(("frames per second during a 2 s drag on the pad", f"{frames / elapsed:.0f} fps "
                 f"({decodes / elapsed:.0f} decodes/s, {step / elapsed:.0f} moves/s)", None, None, "≥ 55"))

    bundle = decoder_bundle(ae_core.load_autoencoder(2))
    scripts = sum(len((ROOT / "ui" / "live" / name).read_bytes())
                  for name in ("decoder.js", "common.js", "map_hover.js"))
    rows.append(("bytes added to the map's first load", f"{(len(bundle) + scripts) / 1000:.0f} kB "
                 f"(decoder {len(bundle) / 1000:.0f} kB, script {scripts / 1000:.0f} kB)", None, None, "stated"))
    return rows


def training_rows(epochs: int) -> list[tuple]:
    """The article's recipe and ours, same data and machine, `epochs` each."""
    import keras

    import ae_core
    from ae_core.config import TrainConfig
    from ae_core.model import build_autoencoder
    from ae_core.train import train

    train_images, _ = ae_core.load_mnist("train")
    test_images, _ = ae_core.load_mnist("test")
    keras.utils.set_random_seed(0)
    article, _, _ = build_autoencoder(2, latent="relu")
    article.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="mse")
    article_times, article_losses = [], []
    for _ in range(epochs):
        begin = time.perf_counter()
        history = article.fit(np.asarray(train_images), np.asarray(train_images), batch_size=128,
                              epochs=1, validation_data=(test_images, test_images), verbose=0)
        article_times.append(time.perf_counter() - begin)
        article_losses.append(history.history["val_loss"][-1])
    article_total, article_best = sum(article_times), min(article_losses)

    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(latent_dim=2, epochs=epochs, patience=epochs)
        begin = time.perf_counter()
        card = train(config, folder, verbose=0)
        ours_total = time.perf_counter() - begin
    elapsed, reached = 0.0, None
    for row in card["history"]:
        elapsed += row["seconds"]
        if reached is None and row["val_loss"] <= article_best:
            reached = elapsed
    return [(f"train {epochs} epochs: article recipe (ReLU latent, RMSprop, numpy fit)",
             (article_total * 1000, article_total * 1000), None, None,
             f"best val MSE {article_best:.4f}"),
            (f"train {epochs} epochs: ours ({config.latent} latent, Adam, tf.data)",
             (ours_total * 1000, ours_total * 1000), (article_total * 1000, article_total * 1000),
             "article recipe", f"best val MSE {card['best_val_mse']:.4f}"),
            (f"ours: time to reach the article's {epochs}-epoch MSE ({article_best:.4f})",
             ((reached or float('nan')) * 1000,) * 2, (article_total * 1000,) * 2, "article recipe",
             "≤ ½ of the article's time" if reached else "not reached")]


def format_table(rows: list[tuple]) -> str:
    lines = ["| what | ours p50 | ours p95 | article's path, same run | ratio | target / note |",
             "|---|---|---|---|---|---|"]
    for name, figures, counterpart, counterpart_name, note in rows:
        def show(ms: float) -> str:
            return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.1f} ms"
        if isinstance(figures, str):  # A figure that is not a time, such as memory.
            lines.append(f"| {name} | {figures} | – | – | – | {note} |")
            continue
        p50, p95 = figures
        if counterpart is None:
            lines.append(f"| {name} | {show(p50)} | {show(p95)} | – | – | {note} |")
        else:
            ratio = counterpart[0] / p50 if p50 else float("nan")
            lines.append(f"| {name} | {show(p50)} | {show(p95)} | {counterpart_name}: {show(counterpart[0])} "
                         f"| {ratio:.1f}× | {note} |")
    return "\n".join(lines)


def machine() -> str:
    import psutil
    import tensorflow as tf

    return (f"{platform.machine()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
            f"Python {platform.python_version()}, TensorFlow {tf.__version__}, no GPU")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="train 12 epochs per recipe, as the article")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "performance.md"))
    args = parser.parse_args()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    rows = inference_rows()
    print(format_table(rows), flush=True)
    if not args.skip_browser:
        rows += browser_rows()
        print(format_table(rows), flush=True)
    if not args.skip_training:
        rows += training_rows(12 if args.full else 3)
    flags = "".join(f" --{name.replace('_', '-')}" for name in ("full", "skip_training", "skip_browser")
                    if getattr(args, name))
    report = (f"Measured by `python -m benchmarks{flags}` on "
              f"{time.strftime('%Y-%m-%d')}: {machine()}.\n\n{format_table(rows)}\n")
    Path(args.out).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
