"""The app in a real browser: click the map, move a slider, upload or draw a digit, follow
links, download the CSV, and screenshot the pages.

Screenshots go to docs/screenshots/, where the README shows them.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from browser import PICK_ISOLATED_POINT, ROOT, launch_chromium, streamlit_server

SCREENSHOTS = ROOT / "docs" / "screenshots"
TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("trained")


@pytest.fixture(scope="module")
def server(tmp_path_factory, models_dir):
    with streamlit_server(tmp_path_factory.mktemp("server") / "streamlit.log",
                          env={"AE_MODELS_DIR": str(models_dir)}) as (url, process):
        yield url


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(viewport={"width": 1500, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        yield page
        browser.close()


def _wait_idle(page) -> None:
    """Wait until Streamlit reports no script running."""
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=TIMEOUT_MS)


def _screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_root_opens_the_map_and_every_page_has_its_own_link(page, server):
    page.goto(f"{server}/")
    page.wait_for_url(f"{server}/map")
    for path, title in [("grid", "Decoded grid"), ("sliders", "Sliders"), ("upload", "Your digit")]:
        page.goto(f"{server}/{path}")
        page.get_by_role("heading", name=title).wait_for()
        assert page.get_by_text("Page not found").count() == 0


def test_click_a_point_shows_its_images(page, server):
    page.goto(f"{server}/map")
    page.wait_for_function("() => { const gd = document.querySelector('.js-plotly-plot');"
                           " return gd && gd._fullData && gd._fullData.length >= 10; }")
    _wait_idle(page)
    target = page.evaluate(PICK_ISOLATED_POINT, [6])
    assert target["count"] == 10000 and target["gap"] > 3
    # Plotly makes a click out of its hover data, which follows a (throttled) mouse move.
    page.mouse.move(target["px"], target["py"])
    page.wait_for_timeout(300)
    page.mouse.click(target["px"], target["py"])
    heading = page.get_by_text(f"Test image #{target['index']} ", exact=False)
    heading.wait_for()
    panel_images = page.locator("[data-testid=stImage] img")
    page.get_by_text("decoded at (").first.wait_for()
    assert panel_images.count() >= 3
    _screenshot(page, "map")


def test_slider_changes_the_decoded_image(page, server):
    page.goto(f"{server}/sliders")
    image = page.locator("[data-testid=stMain] [data-testid=stImage] img").first
    image.wait_for()
    _wait_idle(page)
    before = image.get_attribute("src")
    slider = page.locator("[data-testid=stSlider] input[type=range]").first
    slider.focus()
    for _ in range(15):
        page.keyboard.press("ArrowRight")
    page.get_by_text("decoded at (1.5, 0.0)").wait_for()
    assert image.get_attribute("src") != before
    _screenshot(page, "sliders")


def test_upload_a_digit_shows_its_reconstruction(page, server, test_set, tmp_path):
    images, labels = test_set
    index = int(np.flatnonzero(labels == 3)[0])
    # A "photo": dark ink on light paper, larger than MNIST, as a user would upload it.
    photo = Image.fromarray(((1 - images[index, ..., 0]) * 255).astype(np.uint8)).resize((140, 140))
    path = tmp_path / "my_three.png"
    photo.save(path)
    page.goto(f"{server}/upload")
    page.locator("[data-testid=stFileUploader] input[type=file]").set_input_files(str(path))
    page.get_by_text("2-D reconstruction").wait_for()
    page.get_by_text("Its five nearest test digits").wait_for()
    _wait_idle(page)
    assert page.locator("[data-testid=stException]").count() == 0
    _screenshot(page, "upload")


def test_grid_page_draws_the_grid(page, server):
    page.goto(f"{server}/grid")
    page.wait_for_function("() => { const gd = document.querySelector('.js-plotly-plot');"
                           " return gd && gd._fullData && gd._fullData[0].type === 'heatmap'; }")
    _wait_idle(page)
    ticks = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullLayout.yaxis.ticktext")
    assert ticks[0] == "5.00" and ticks[-1] == "-5.00"
    _screenshot(page, "grid")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the grid (PNG)").click()
    grid = Image.open(download.value.path())
    assert grid.size == (280, 280) and grid.mode == "L"  # Ten 28-pixel digits a side.


def _wait_for_map(page) -> None:
    page.wait_for_function("() => { const gd = document.querySelector('.js-plotly-plot');"
                           " return gd && gd._fullData && gd._fullData.length >= 1; }")
    _wait_idle(page)


def test_sliders_deep_link_draws_that_point_and_the_url_follows(page, server):
    import ae_core
    from ae_core.explore import enlarge

    page.goto(f"{server}/sliders?z1=1.5&z2=-2")
    page.get_by_text("decoded at (1.5, -2.0)").wait_for()
    _wait_idle(page)
    source = page.locator("[data-testid=stMain] [data-testid=stImage] img").first.get_attribute("src")
    shown = np.asarray(Image.open(io.BytesIO(page.request.get(f"{server}{source}" if source.startswith("/")
                                                              else source).body())))
    expected = enlarge(ae_core.load_autoencoder(2).decode(np.array([[1.5, -2.0]]))[0], 10)
    assert shown.shape == expected.shape
    assert np.abs(shown.astype(int) - expected.astype(int)).max() <= 2  # Same pixels, give or take rounding.
    page.locator("[data-testid=stSlider] input[type=range]").first.focus()
    page.keyboard.press("ArrowRight")
    page.get_by_text("decoded at (1.6, -2.0)").wait_for()
    page.wait_for_url(lambda url: "z1=1.6" in url and "z2=-2" in url)


def test_map_deep_link_selects_the_digit_and_a_click_moves_the_link(page, server, test_set):
    _, labels = test_set
    page.goto(f"{server}/map?index=123")
    page.get_by_text(f"Test image #123 · label {labels[123]}").wait_for()
    _wait_for_map(page)
    target = page.evaluate(PICK_ISOLATED_POINT, [6])
    page.mouse.move(target["px"], target["py"])
    page.wait_for_timeout(300)
    page.mouse.click(target["px"], target["py"])
    page.get_by_text(f"Test image #{target['index']} ", exact=False).wait_for()
    page.wait_for_url(lambda url: f"index={target['index']}" in url)


def test_drawing_a_stroke_shows_its_reconstruction(page, server):
    page.goto(f"{server}/upload")
    page.get_by_text("Draw a digit in the box, or upload an image file.").wait_for()
    _wait_idle(page)
    box = page.locator("[data-testid=stMain] canvas").last.bounding_box()
    # A "1": one vertical stroke down the middle of the box.
    x, top = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.15
    page.mouse.move(x, top)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(x + step * 0.5, top + step * box["height"] * 0.035)
    page.mouse.up()
    page.get_by_text("2-D reconstruction").wait_for()
    page.get_by_text("where it lands").wait_for()
    _wait_idle(page)
    assert page.locator("[data-testid=stException]").count() == 0
    _screenshot(page, "draw")


def test_latents_csv_downloads_every_test_digit(page, server, test_set, tmp_path):
    import pandas as pd

    _, labels = test_set
    page.goto(f"{server}/map")
    _wait_for_map(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the latents (CSV)").click()
    path = tmp_path / "latents.csv"
    download.value.save_as(path)
    table = pd.read_csv(path)
    assert list(table.columns) == ["index", "label", "z1", "z2", "reconstruction_error"]
    assert len(table) == 10_000 and table["index"].tolist() == list(range(10_000))
    assert np.array_equal(table["label"].to_numpy(), labels)  # In tfds's order, label for label.
    assert table[["z1", "z2"]].abs().to_numpy().max() <= 5 and (table["reconstruction_error"] > 0).all()


def test_map_with_the_manifold_under_it(page, server):
    page.goto(f"{server}/map?background=digits&density=25&opacity=0.6")
    page.wait_for_function("() => { const gd = document.querySelector('.js-plotly-plot');"
                           " return gd && gd._fullLayout && gd._fullLayout.images.length === 1; }")
    _wait_idle(page)
    assert page.locator(".js-plotly-plot svg image").count() == 1  # Drawn, not just in the layout.
    page.wait_for_timeout(500)  # Let the background image finish painting.
    _screenshot(page, "map_manifold")


def test_paths_page_draws_the_strip_and_the_segment(page, server):
    page.goto(f"{server}/paths?a=5&b=17&steps=8")
    page.get_by_text("test image #17").first.wait_for()
    page.wait_for_function("() => { const gd = document.querySelector('.js-plotly-plot');"
                           " return gd && gd._fullData && gd._fullData.some(t => t.name === 'path'); }")
    _wait_idle(page)
    _screenshot(page, "paths")


def test_train_one_epoch_from_the_browser_and_explore_the_new_model(page, server, models_dir):
    from playwright.sync_api import expect

    page.goto(f"{server}/train")
    page.get_by_role("button", name="Start training").wait_for()
    _wait_idle(page)
    name_box = page.get_by_role("textbox", name="Name of the new model")
    expect(name_box).to_have_value(re.compile(r"^mnist-\d{8}-\d{6}$"))  # A fresh default name.
    name = "from-the-browser"
    name_box.fill(name)
    sliders = page.locator("[data-testid=stForm] [data-testid=stSlider] input[type=range]")
    # Epochs 5 -> 1, training images 10,000 -> 5,000, batch 128 -> 32: about ten seconds.
    for slider, keys in zip([sliders.nth(0), sliders.nth(1), sliders.nth(2)],
                            [["Home"], ["ArrowLeft"], ["ArrowLeft", "ArrowLeft"]]):
        slider.focus()
        for key in keys:
            page.keyboard.press(key)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(f"{name}: running").wait_for()
    page.locator("[data-testid=stProgress]").wait_for()
    page.get_by_text(f"{name}: done").wait_for(timeout=300_000)
    _wait_idle(page)
    assert (models_dir / name / "autoencoder_mnist_z2.weights.h5").exists()
    # The loss curve and the epoch-by-epoch map are drawn once the run is chosen.
    page.goto(f"{server}/train?model={name}")
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(gd =>"
                           " gd._transitionData && gd._transitionData._frames.length === 1)")
    _wait_idle(page)
    _screenshot(page, "train")
    # The sidebar offers the new model on every page; the map draws with it.
    page.goto(f"{server}/map?model={name}")
    page.get_by_text(f"model {name}").wait_for()
    _wait_for_map(page)
    assert page.locator("[data-testid=stException]").count() == 0


def test_how_the_fashion_map_formed_epoch_by_epoch(page, server):
    """The shipped Fashion-MNIST model recorded its training: step through the animation."""
    page.goto(f"{server}/train?dataset=fashion_mnist")
    find = ("() => [...document.querySelectorAll('.js-plotly-plot')].find(gd =>"
            " gd._transitionData && gd._transitionData._frames.length > 1)")
    page.wait_for_function(f"() => !!({find})()")
    _wait_idle(page)
    frames = page.evaluate(f"() => ({find})()._transitionData._frames.length")
    chart = page.locator(".js-plotly-plot").filter(has=page.locator(".slider-container")).first
    chart.scroll_into_view_if_needed()
    panels = []
    for epoch in sorted({1, 3, frames}):
        # Move the figure's own slider to that epoch, as a click on its step does.
        page.evaluate(f"async () => {{ const gd = ({find})();"
                      f" await Plotly.animate(gd, ['{epoch}'], {{mode: 'immediate', frame: {{duration: 0, redraw: false}},"
                      f" transition: {{duration: 0}}}}); }}")
        page.wait_for_timeout(300)
        first_x = page.evaluate(f"() => ({find})()._fullData[0].x[0]")
        panels.append((first_x, Image.open(io.BytesIO(chart.screenshot()))))
    # Each epoch's frame really moved the points: training changes where the images land.
    assert len({x for x, _ in panels}) == len(panels)
    width = sum(image.width for _, image in panels)
    strip = Image.new("RGB", (width, max(image.height for _, image in panels)), "white")
    left = 0
    for _, image in panels:
        strip.paste(image, (left, 0))
        left += image.width
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    strip.save(SCREENSHOTS / "formation.png")
