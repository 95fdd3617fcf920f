"""The performance benchmark: every figure of issue 5, measured on this machine, in one run.

    python -m benchmarks                 # quick: training for 3 epochs per recipe (~15 min)
    python -m benchmarks --full          # the article's 12 epochs (~45 min on 2 cores)
    python -m benchmarks --skip-training # inference and browser only (~3 min)

Writes benchmarks/results/performance.md (included in the README) and prints it. This is
a benchmark, not a test: nothing here asserts, and the tests hold no timing checks.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # The browser helpers are shared with the tests.


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
    from ae_core.explore import latent_grid

    model = ae_core.load_autoencoder(2)
    decoder, encoder = model._decoder, model._encoder  # The same Keras models, for predict().
    one = np.zeros((1, 2), dtype=np.float32)
    grid, _, _ = latent_grid(10, -5, 5)
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

    from browser import PICK_ISOLATED_POINT, launch_chromium, streamlit_server

    rows = []
    log = ROOT / "benchmarks" / "results" / "streamlit.log"
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.set_default_timeout(120_000)
        started = time.perf_counter()
        with streamlit_server(log) as (url, process):
            page.goto(f"{url}/map")
            page.wait_for_function("() => { const gd = document.querySelector('.js-plotly-plot');"
                                   " return gd && gd._fullData && gd._fullData.length >= 10"
                                   " && gd.querySelector('canvas'); }")
            page.wait_for_selector("[data-test-script-state=notRunning]")
            cold = time.perf_counter() - started
            rows.append(("server start → map drawn, first visit", (cold * 1000, cold * 1000), None, None, "≤ 12 s"))

            clicks = []
            for attempt in range(12):
                target = page.evaluate(PICK_ISOLATED_POINT.replace("k += 37", f"k += {31 + attempt * 7}"), [6])
                page.mouse.move(target["px"], target["py"])
                page.wait_for_timeout(300)  # Plotly's hover must register first; not timed.
                begin = time.perf_counter()
                page.mouse.click(target["px"], target["py"])
                page.wait_for_function(
                    "(index) => { const h = [...document.querySelectorAll('h3')].find("
                    "e => e.textContent.includes('Test image #' + index + ' '));"
                    " const imgs = [...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img')];"
                    " return h && imgs.length >= 3 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
                    arg=target["index"], polling="raf")
                clicks.append(time.perf_counter() - begin)
            rows.append(("click a map point → its 3 images drawn", percentiles(clicks), None, None, "≤ 400 ms p50"))

            page.goto(f"{url}/sliders")
            image = "[data-testid=stMain] [data-testid=stImage] img"
            page.wait_for_selector(image)
            page.wait_for_selector("[data-test-script-state=notRunning]")
            slider = page.locator("[data-testid=stSlider] input[type=range]").first
            slider.focus()
            moves = []
            for step in range(25):
                previous = page.locator(image).first.get_attribute("src")
                begin = time.perf_counter()
                page.keyboard.press("ArrowRight" if step % 10 < 5 else "ArrowLeft")
                page.wait_for_function(
                    "([selector, previous]) => { const i = document.querySelector(selector);"
                    " return i && i.src !== previous && i.complete && i.naturalWidth > 0; }",
                    arg=[image, previous], polling="raf")
                moves.append(time.perf_counter() - begin)
                page.wait_for_timeout(150)
            rows.append(("move a slider → new digit drawn", percentiles(moves), None, None, "≤ 300 ms p50"))

            switches = []
            targets = [("Decoded grid", "() => { const gd = document.querySelector('.js-plotly-plot');"
                                        " return gd && gd._fullData && gd._fullData[0].type === 'heatmap'; }"),
                       ("Latent map", "() => { const gd = document.querySelector('.js-plotly-plot');"
                                      " return gd && gd._fullData && gd._fullData.length >= 10; }"),
                       ("Sliders", "() => !!document.querySelector('[data-testid=stSlider]')"),
                       ("Your digit", "() => !!document.querySelector('[data-testid=stFileUploader]')")]
            for _ in range(3):
                for name, ready in targets:
                    begin = time.perf_counter()
                    page.get_by_role("link", name=name).click()
                    page.wait_for_function(ready, polling="raf")
                    page.wait_for_selector("[data-test-script-state=notRunning]")
                    switches.append(time.perf_counter() - begin)
            rows.append(("switch page, warm", percentiles(switches[4:]), None, None, "≤ 1 s"))

            others = []
            for index in range(sessions - 1):
                other = browser.new_page(viewport={"width": 1500, "height": 1000})
                other.goto(f"{url}/{['map', 'sliders', 'grid', 'upload'][index % 4]}")
                other.wait_for_selector("[data-test-script-state=notRunning]", timeout=120_000)
                others.append(other)
            rss = psutil.Process(process.pid).memory_info().rss / 2**30
            rows.append((f"server RSS with {sessions} sessions open", f"{rss:.2f} GB", None, None,
                         "≤ 1.5 GB"))
        browser.close()
    return rows


def training_rows(epochs: int) -> list[tuple]:
    """The article's recipe and ours, same data and machine, `epochs` each."""
    import keras

    import ae_core
    from ae_core.config import TrainConfig
    from ae_core.model import build_autoencoder
    from ae_core.train import train
    import tempfile

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
    report = (f"Measured by `python -m benchmarks{' --full' if args.full else ''}` on "
              f"{time.strftime('%Y-%m-%d')}: {machine()}.\n\n{format_table(rows)}\n")
    Path(args.out).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
