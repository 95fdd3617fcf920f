"""The pages through Streamlit's AppTest (no browser): render, slider, upload, errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from streamlit.testing.v1 import AppTest

from ae_core import framing

APP = "../app.py"  # AppTest resolves paths against this test file.
TIMEOUT = 120  # Seconds: the first run imports TensorFlow and loads the models.
PAGES = ["pages/map.py", "pages/grid.py", "pages/sliders.py", "pages/upload.py",
         "pages/paths.py", "pages/train.py"]


def _run(page: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.switch_page(page)
    return app.run()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_exception(page):
    app = _run(page)
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    assert app.title[0].value


def test_app_opens_on_the_map_with_the_sidebar():
    # Run app.py itself (switch_page would run one page alone, without app.py's frame).
    app = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not app.exception
    assert app.title[0].value == "Latent map"
    sidebar_text = " ".join(m.value for m in app.sidebar.markdown)
    assert "2-D latent" in sidebar_text and "test MSE" in sidebar_text
    assert any("10-D reconstruction" in caption for image in app.sidebar.get("image")
               for caption in image.captions)


def live_settings(app: AppTest, key: str) -> dict:
    """The settings a live view (ui/live.py) was mounted with: the JSON at the head of its bytes."""
    [element] = [element for element in app.get("bidi_component") if element.key == key]
    return framing.unpack(element.proto.bytes)[0]


def test_moving_a_slider_moves_the_pad_and_its_decoder_is_the_models():
    import ae_core
    from ae_core.export import decoder_bundle

    app = _run("pages/sliders.py")
    assert live_settings(app, "live_pad")["z"] == [0.0, 0.0]
    app.slider(key="z1").set_value(2.5).run()
    assert live_settings(app, "live_pad")["z"] == [2.5, 0.0]
    [pad] = app.get("bidi_component")
    # The settings name the decoder's asset, not its bytes: the shipped model's decoder,
    # exactly as ae_core exports it, which the browser fetches once (tests/test_capacity.py).
    from ae_core import store

    decoder_url = live_settings(app, "live_pad")["decoder"]
    assert len(pad.proto.bytes) < 1000
    assert store.asset_path(decoder_url.removeprefix("assets/")).read_bytes() == decoder_bundle(
        ae_core.load_autoencoder(2))
    assert not app.get("image") or all(not c.startswith("decoded at") for i in app.get("image") for c in i.captions)


def _png_of(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_upload_goes_through_the_page(test_set):
    images, labels = test_set
    digit = ((1 - images[0, ..., 0]) * 255).astype(np.uint8)  # Dark ink on light paper.
    app = _run("pages/upload.py")
    app.file_uploader(key="digit_upload").set_value(("digit.png", _png_of(digit), "image/png")).run()
    assert not app.exception and not app.error
    captions = [c for image in app.get("image") for c in image.captions]
    assert "2-D reconstruction" in captions and "10-D reconstruction" in captions
    assert any(c.startswith("where it lands") for c in captions)
    assert any(c.startswith("labels ") for c in captions)
    landed = next(c for c in captions if c.startswith("where it lands"))
    z1, z2 = app.session_state["your_digit"]["z"]  # What the path page offers as an end.
    assert landed.endswith(f"({z1:.2f}, {z2:.2f})")


def test_bad_upload_shows_the_sentence_not_a_traceback():
    app = _run("pages/upload.py")
    app.file_uploader(key="digit_upload").set_value(
        ("digit.png", b"<html>not an image</html>", "image/png")).run()
    assert not app.exception
    assert [e.value for e in app.error] == ["This file is not a PNG, JPEG, GIF, BMP or WebP image."]


def test_blank_upload_says_no_digit_found():
    app = _run("pages/upload.py")
    blank = np.full((64, 64), 255, dtype=np.uint8)
    app.file_uploader(key="digit_upload").set_value(("blank.png", _png_of(blank), "image/png")).run()
    assert not app.exception
    assert app.error and app.error[0].value.startswith("No digit found")


def test_grid_controls_change_the_grid():
    import ae_core
    from ae_core import store

    app = _run("pages/grid.py")
    app.slider(key="size").set_value(5).run()
    app.slider(key="range").set_value((-3.0, 3.0)).run()
    assert not app.exception and not app.error
    figure = json.loads(app.get("plotly_chart")[0].proto.spec)
    name = figure["layout"]["images"][0]["source"].rsplit("/", 1)[-1]
    picture = np.asarray(Image.open(store.asset_path(name)).convert("L"), dtype=np.int64)
    assert picture.shape == (5 * 28, 5 * 28)
    # Cell (row, column) is the decoder's image at z1 = -3 + 1.5 column, z2 = 3 - 1.5 row.
    model = ae_core.load_autoencoder(2)
    for row, column in [(0, 0), (0, 4), (2, 2), (4, 1)]:
        expected = model.decode(np.array([[-3 + 1.5 * column, 3 - 1.5 * row]], dtype=np.float32))[0, ..., 0]
        cell = picture[28 * row:28 * (row + 1), 28 * column:28 * (column + 1)]
        assert np.abs(cell - np.round(expected * 255)).max() <= 1, (row, column)


NO_DATA_CHILD = """
import json, sys
from streamlit.testing.v1 import AppTest

from ae_core import framing
report = {}
for page in ["pages/map.py", "pages/grid.py", "pages/sliders.py", "pages/upload.py",
             "pages/paths.py"]:
    app = AppTest.from_file(sys.argv[1], default_timeout=120)
    app.switch_page(page)
    app.run()
    report[page] = {"exceptions": [e.value for e in app.exception], "errors": [e.value for e in app.error],
                    "warnings": [w.value for w in app.warning], "images": len(app.get("image")),
                    "live": len(app.get("bidi_component"))}
print(json.dumps(report))
"""


@pytest.mark.slow
def test_without_mnist_the_map_explains_and_the_rest_works(tmp_path):
    """Offline with no AE_DATA_DIR files and nothing prepared: a fresh server process's view."""
    import json
    import os
    import subprocess
    import sys

    from conftest import ROOT

    (tmp_path / "empty").mkdir()
    # A fresh machine: no data, nothing prepared, and nothing derived from the data on disk.
    env = {**os.environ, "AE_DATA_DIR": str(tmp_path / "empty"), "TFDS_DATA_DIR": str(tmp_path / "tfds"),
           "AE_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", NO_DATA_CHILD, str(ROOT / "app.py")], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(not outcome["exceptions"] for outcome in report.values()), report
    assert any("AE_DATA_DIR" in error for error in report["pages/map.py"]["errors"])
    assert not report["pages/grid.py"]["errors"]
    sliders = report["pages/sliders.py"]
    assert not sliders["errors"] and sliders["live"] == 1  # The pad still decodes.
    assert any("AE_DATA_DIR" in warning for warning in sliders["warnings"])
    assert not report["pages/upload.py"]["errors"]
    assert any("AE_DATA_DIR" in error for error in report["pages/paths.py"]["errors"])
