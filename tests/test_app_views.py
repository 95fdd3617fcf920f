"""Links, map layers, the error gallery and paths, through AppTest (no browser).

A copied URL must reproduce the view, so each test opens a page with query parameters
and checks what is drawn. That the URL follows the controls is the browser's job (the
frontend rewrites it), so tests/test_browser.py checks that part.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ae_core import datasets

from test_app import APP, TIMEOUT, live_settings


def _open(page: str, **params: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.switch_page(page)
    for name, value in params.items():
        app.query_params[name] = value
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    return app


def _figure(app: AppTest, number: int = 0) -> dict:
    return json.loads(app.get("plotly_chart")[number].proto.spec)


def _array(value) -> np.ndarray:
    """A figure's data field as numpy: Plotly sends numpy arrays as base64 typed arrays."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in str(value.get("shape", len(flat))).split(",")])
    return np.asarray(value)


def _points(app: AppTest, chart_key: str) -> dict[str, np.ndarray]:
    """The points the browser puts into the chart keyed ``chart_key``: the asset its
    ``live.map_points`` names, read as ui/live/map_points.js reads it."""
    from ae_core import store

    url = live_settings(app, f"map_points_{chart_key}")["points"]
    return store.read_points(store.asset_path(url.removeprefix("assets/")).read_bytes())


def _position(points: dict[str, np.ndarray], index: int) -> tuple[float, float]:
    """(x, y) of the point whose test index (its customdata in the chart) is ``index``."""
    where = int(np.flatnonzero(points["index"] == index)[0])
    return float(points["z1"][where]), float(points["z2"][where])


def _captions(app: AppTest) -> list[str]:
    return [caption for image in app.get("image") for caption in image.captions]


def test_sliders_link_opens_that_point_and_the_sliders_move_on_from_it():
    app = _open("pages/sliders.py", z1="1.5", z2="-2")
    assert live_settings(app, "live_pad")["z"] == [1.5, -2.0]
    app.slider(key="z1").set_value(-3.2).run()
    assert live_settings(app, "live_pad")["z"] == [-3.2, -2.0]


def test_map_link_selects_that_test_image_and_rings_it_without_changing_the_figure(test_set):
    _, labels = test_set
    app = _open("pages/map.py", index="123")
    assert app.subheader[0].value == f"Test image #123 · {labels[123]}"
    # The browser draws the ring (tests/test_live.py): the figure is the one without a choice,
    # so choosing an image makes plotly redraw nothing.
    assert _figure(app) == _figure(_open("pages/map.py"))
    image_trace = next(t for t in _figure(app)["data"] if t.get("name") == str(labels[123]))
    points = _points(app, "map_chart")
    assert image_trace["meta"] == {"points": int(points["label"][points["index"] == 123][0])}
    assert live_settings(app, "live_map_hover")["ring"] == pytest.approx(_position(points, 123))
    assert live_settings(_open("pages/map.py"), "live_map_hover")["ring"] is None


def test_map_link_with_an_impossible_index_is_ignored_and_says_so():
    app = _open("pages/map.py", index="99999")
    assert not app.subheader and app.info  # The invitation to click, not a traceback.
    assert "index" not in app.query_params
    assert [c.value for c in app.caption if "was ignored" in c.value] == [
        ":material/link_off: The link's index=99999 was ignored: it must be a whole number from 0 to 9999."]


def test_typing_an_index_shows_that_digit():
    app = _open("pages/map.py")
    app.number_input(key="index").set_value(42).run()
    assert app.subheader[0].value.startswith("Test image #42 ")


def test_manifold_layer_lays_the_decoded_grid_under_the_points():
    app = _open("pages/map.py", background="digits", density="12", opacity="0.3")
    layout = _figure(app)["layout"]
    [image] = layout["images"]
    assert image["xref"] == "x" and image["layer"] == "below" and image["opacity"] == 0.3
    step = 10 / 11  # Twelve cells whose centres run from -5 to 5.
    assert image["x"] == pytest.approx(-5 - step / 2) and image["sizex"] == pytest.approx(10 + step)
    from PIL import Image

    from ae_core import store

    # The picture is an immutable asset the browser fetches: 12 decoded images a side.
    picture = Image.open(store.asset_path(image["source"].removeprefix("assets/")))
    assert image["source"].endswith(".png") and picture.size == (12 * 28, 12 * 28)


def test_drift_layer_is_a_heatmap_under_the_points():
    import ae_core
    from ae_core import store
    from ae_core.explore import reencoding_drift

    app = _open("pages/map.py", background="drift", density="10")
    first, *rest = _figure(app)["data"]
    assert first["type"] == "heatmap" and len(_array(first["y"])) == 20
    assert all(trace["type"] == "scattergl" for trace in rest)
    # Its values come as an asset (ui/live/map_points.js fills them in): those of re-encoding.
    asset = store.asset_path(first["meta"]["field"].removeprefix("assets/"))
    values = np.frombuffer(asset.read_bytes(), dtype="<f4").reshape(20, 20)
    expected, _, _ = reencoding_drift(ae_core.load_autoencoder(2), 20)
    assert np.abs(values - expected).max() < 1e-4


def test_error_colouring_and_the_gallery_of_the_worst_twenty(test_set):
    _, labels = test_set
    app = _open("pages/map.py", colour="error")
    [trace] = [t for t in _figure(app)["data"] if t["type"] == "scattergl"]
    # One trace takes all the points, coloured by their errors (ui/live/map_points.js).
    points = _points(app, "map_chart")
    colours = points["error"]
    assert trace["meta"] == {"points": "all"} and len(points["z1"]) == 10_000 and len(colours) == 10_000
    assert trace["marker"]["cmax"] == pytest.approx(float(np.percentile(colours, 99)), rel=1e-5)
    gallery = [c for c in _captions(app) if c.startswith("#")]
    assert len(gallery) == 20
    errors = [float(c.rsplit("· ", 1)[1]) for c in gallery]
    assert errors == sorted(errors, reverse=True)
    # Each card's class is the tfds label of that test index.
    for caption in gallery:
        index, label = caption.split(" · ")[:2]
        assert int(label) == labels[int(index.removeprefix("#"))]
    # The worst digit's error is the largest of the colours on the map.
    assert float(colours.max()) == pytest.approx(errors[0], abs=5e-4)  # Captions show 3 decimals.


def test_path_between_two_test_digits_is_drawn_and_downloadable(test_set):
    app = _open("pages/paths.py", a="5", b="17", steps="7")
    strip_caption = next(c for c in _captions(app) if c.startswith("from "))
    assert "test image #5" in strip_caption and "test image #17" in strip_caption
    assert strip_caption.endswith("7 steps")
    path = next(t for t in _figure(app)["data"] if t.get("name") == "path")
    points = _points(app, "path_map")
    for end, index in [(0, 5), (1, 17)]:
        assert (path["x"][end], path["y"][end]) == pytest.approx(_position(points, index))
    assert [b.proto.label for b in app.get("download_button")] == ["Download the strip (PNG)"]


def test_the_map_offers_the_csv_and_the_grid_its_png():
    assert "Download the latents (CSV)" in [b.proto.label for b in _open("pages/map.py").get("download_button")]
    assert "Download the grid (PNG)" in [b.proto.label for b in _open("pages/grid.py").get("download_button")]


def test_path_ends_default_to_the_last_two_map_clicks():
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.session_state["recent_clicks"] = [42, 4242]  # As the map's click handler leaves them.
    app.switch_page("pages/paths.py")
    app.run()
    assert not app.exception
    caption = next(c for c in _captions(app) if c.startswith("from "))
    assert "test image #42 " in caption and "test image #4242 " in caption
    assert not [radio for radio in app.radio if radio.key in ("a_from", "b_from")]  # No choice of one option.


def test_path_can_start_at_your_own_digit(test_set):
    images, _ = test_set
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.session_state["your_digit"] = {"z": (-1.25, 2.5), "image": images[9]}  # As "Your image" leaves it.
    app.switch_page("pages/paths.py")
    app.run()
    app.radio(key="a_from").set_value("your drawing").run()
    assert not app.exception and not app.error
    caption = next(c for c in _captions(app) if c.startswith("from "))
    assert caption.startswith("from your drawing at (-1.25, 2.50) to test image #3 ")
    path = next(t for t in _figure(app)["data"] if t.get("name") == "path")
    assert (path["x"][0], path["y"][0]) == pytest.approx((-1.25, 2.5))


FASHION_PAGES = ["pages/map.py", "pages/grid.py", "pages/sliders.py",
                 "pages/paths.py", "pages/train.py"]


@pytest.mark.parametrize("page", FASHION_PAGES)
def test_every_page_works_on_fashion_mnist(page):
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.session_state["dataset"] = "fashion_mnist"  # As the sidebar's dataset box sets it.
    app.switch_page(page)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def test_fashion_map_names_its_classes_and_its_formation_plays():
    import ae_core

    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.session_state["dataset"] = "fashion_mnist"
    app.switch_page("pages/map.py")
    app.run()
    names = [trace["name"] for trace in _figure(app)["data"]]
    assert names == list(ae_core.CLASS_NAMES["fashion_mnist"]) and "Sneaker" in names
    app.switch_page("pages/train.py")
    app.run()
    formation = next(chart for chart in app.get("plotly_chart")
                     if json.loads(chart.proto.spec).get("frames"))
    frames = json.loads(formation.proto.spec)["frames"]
    assert len(frames) == ae_core.load_autoencoder(2, "fashion_mnist").card["epochs_run"]


def test_upload_page_says_when_the_model_is_not_about_digits(test_set):
    from test_app import _png_of

    images, _ = test_set
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.session_state["dataset"] = "fashion_mnist"
    app.switch_page("pages/upload.py")
    app.run()
    assert app.warning and app.warning[0].value.startswith(
        "The model in use was trained on Fashion-MNIST clothes, whose images were made another way")
    digit = ((1 - images[0, ..., 0]) * 255).astype(np.uint8)
    app.file_uploader(key="digit_upload").set_value(("digit.png", _png_of(digit), "image/png")).run()
    assert not app.exception and "2-D reconstruction" in _captions(app)


def _texts(app: AppTest) -> list[str]:
    """Every word the page shows: text elements, and each control's label, options and captions."""
    kinds = ("title", "caption", "subheader", "header", "info", "markdown", "warning", "success")
    texts = [element.value for kind in kinds for element in app.get(kind)] + _captions(app)
    for kind in ("radio", "selectbox", "slider", "number_input", "button", "checkbox", "toggle"):
        for element in app.get(kind):
            texts.append(element.proto.label)
            texts.extend(getattr(element.proto, "options", []))
            texts.extend(getattr(element.proto, "captions", []))
    return texts


@pytest.mark.parametrize("page", ["pages/map.py", "pages/grid.py", "pages/sliders.py", "pages/paths.py",
                                  "pages/upload.py", "pages/compare.py", "pages/train.py"])
def test_fashion_mnist_is_never_called_digits(page):
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.session_state["dataset"] = "fashion_mnist"
    app.switch_page(page)
    app.run()
    assert not app.exception
    # The other dataset may be offered by its name ("MNIST digits"); nothing else says digit.
    titles = {dataset.title for dataset in datasets.TABLE}
    spoken_of_as_digits = [text for text in _texts(app) if "digit" in text.lower() and text not in titles]
    assert spoken_of_as_digits == []


@pytest.mark.parametrize("kind", ["ae", "vae", "umap"])
def test_the_train_page_follows_the_sidebar_and_shows_the_chosen_models_training(kind):
    """Its curves are the MSE for every kind: a VAE's or UMAP-AE's loss holds other terms (a
    VAE's is in the hundreds), so the chart once called those the MSE."""
    import ae_core

    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.session_state["dataset"] = "fashion_mnist"
    app.session_state["kind"] = kind
    app.switch_page("pages/train.py")
    app.run()
    assert not app.exception
    assert app.selectbox(key="train_dataset").value == "fashion_mnist"
    assert "How the shipped model trained" in [s.value for s in app.subheader]
    curves = next(chart for chart in app.get("plotly_chart") if "validation" in chart.proto.spec)
    figure = json.loads(curves.proto.spec)
    training, validation = (_array(next(trace for trace in figure["data"] if trace["name"].startswith(name))["y"])
                            for name in ("training", "validation"))
    card = ae_core.load_autoencoder(2, "fashion_mnist", kind=kind).card
    epochs = len(card["history"])
    assert len(training) == len(validation) == epochs
    # The sidebar's test MSE (tests/test_kinds.py and test_shipped.py measure it on the idx files)
    # is the validation curve's best point, and every point beats drawing the average image.
    assert validation.min() == pytest.approx(card["best_val_mse"], rel=1e-9)
    assert max(training.max(), validation.max()) < card["average_image_mse"]
    assert figure["layout"]["yaxis"]["title"]["text"] == "MSE"
    assert figure["layout"]["xaxis"]["range"] == [0.5, epochs + 0.5]  # Epochs 1 to N, nothing around.
