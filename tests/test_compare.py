"""Kinds in the app and the Compare page: every page with every shipped kind (AppTest), the
figures under the two maps, and the maps' links in Chromium checked against Keras's decoder
and the codes of both models."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from ae_core.config import MODEL_KINDS, WEIGHTS_DIR, weights_stem
from harness.browser import streamlit_server
from test_app import PAGES
from test_app_views import _open as open_app
from test_app_views import _points
from test_live import _keras_grey, _open, _painted, _plot_area

SHIPPED_KINDS = [kind for kind in MODEL_KINDS if (WEIGHTS_DIR / f"{weights_stem(2, 'mnist', kind)}.json").exists()]
TIMEOUT_MS = 90_000


# --- Kinds on every page (AppTest) -------------------------------------------------------------

FASHION_KINDS = [kind for kind in MODEL_KINDS if kind != "ae"
                 and (WEIGHTS_DIR / f"{weights_stem(2, 'fashion_mnist', kind)}.json").exists()]
# MNIST's every kind in the quick lane; Fashion-MNIST's other kinds in the slow one.
KIND_CASES = ([pytest.param("mnist", kind, id=f"mnist-{kind}") for kind in SHIPPED_KINDS]
              + [pytest.param("fashion_mnist", kind, id=f"fashion_mnist-{kind}", marks=pytest.mark.slow)
                 for kind in FASHION_KINDS])


@pytest.mark.parametrize("dataset, kind", KIND_CASES)
@pytest.mark.parametrize("page", [*PAGES, "pages/compare.py"])
def test_every_page_works_with_every_shipped_kind(page, dataset, kind):
    import ae_core

    # Fails on any exception or error shown; the Compare page shows this kind on its left.
    app = open_app(page, dataset=dataset, kind=kind, **({"left": kind} if page == "pages/compare.py" else {}))
    assert app.title[0].value and app.sidebar.radio[0].value == kind
    if page in ("pages/map.py", "pages/compare.py"):
        images, _ = ae_core.load_mnist("test", dataset)
        codes = ae_core.load_autoencoder(2, dataset, kind=kind).encode(images)
        # Every code in view, however far beyond the window this kind puts them.
        layout = json.loads(app.get("plotly_chart")[0].proto.spec)["layout"]
        for axis in (layout["xaxis"], layout["yaxis"]):
            assert axis["range"][0] <= codes.min() and codes.max() <= axis["range"][1], (axis["range"], codes.min(), codes.max())
    if page == "pages/map.py":  # The map's points are this kind's codes of the test images.
        points = _points(app, "map_chart")
        assert np.abs(np.stack([points["z1"][:50], points["z2"][:50]], axis=1) - codes[:50]).max() < 1e-4


@pytest.fixture
def only_ae(tmp_path, monkeypatch) -> str:
    """A model trained in the app, which has the ae kind alone: a copy of the shipped ae's files."""
    import shutil

    folder = tmp_path / "trained" / "only-ae"
    folder.mkdir(parents=True)
    for latent_dim in (2, 10):
        for suffix in (".json", ".weights.h5"):
            name = weights_stem(latent_dim, "mnist") + suffix
            shutil.copyfile(WEIGHTS_DIR / name, folder / name)
    monkeypatch.setenv("AE_MODELS_DIR", str(tmp_path / "trained"))
    return folder.name


def test_a_link_to_a_kind_without_weights_says_how_to_train_it(only_ae):
    app = open_app("pages/map.py", model=only_ae, kind="vae")
    notes = [caption.value for caption in app.caption if "kind=vae was ignored" in caption.value]
    assert len(notes) == 1 and "--kind vae" in notes[0], notes
    assert app.sidebar.radio[0].value == "ae"


def test_the_compare_figures_are_each_models_own_and_kept_on_disk():
    import ae_core
    from ae_core import compare, store
    from ae_core.explore import fraction_inside

    if len(SHIPPED_KINDS) < 2:
        pytest.skip("two shipped kinds are needed to compare")
    left, right = SHIPPED_KINDS[0], SHIPPED_KINDS[-1]  # ae and umap.
    app = open_app("pages/compare.py", left=left, right=right)
    table = app.table[0].value
    for side, kind in (("left", left), ("right", right)):
        data = store.map_data("mnist", "shipped", kind)
        model = ae_core.load_autoencoder(2, "mnist", kind=kind)
        card = model.card
        column = table[f"{side}: {kind}"].tolist()
        assert column[0] == f"{data.errors.mean():.4f}"
        assert column[2] == f"{fraction_inside(data.latents):.1%}"
        assert column[4] == f"{card['training_seconds'] + card.get('umap_graph_seconds', 0):.0f} s"
        # The encoder row against the Keras model the card's weights load into.
        filters = {layer.filters for layer in model._encoder.layers if layer.name.startswith("encoder_conv")}
        hidden = [layer.units for layer in model._encoder.layers if layer.name.startswith("encoder_hidden")]
        assert len(filters) == 1 and len(hidden) <= 1, (filters, hidden)
        assert column[5].startswith(f"{filters.pop()} filters per convolution")
        assert column[5].endswith(f"Dense({hidden[0]})" if hidden else "convolution"), column[5]
        kept = list((store.cache_dir() / "derived" / store.derived_key("mnist", card)).glob("metrics-*.json"))
        assert len(kept) == 1 and json.loads(kept[0].read_text()) == compare.model_figures("mnist", "shipped", kind)
    assert table[f"left: {left}"].tolist() != table[f"right: {right}"].tolist()


# --- The linked maps in Chromium ---------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("compare") / "streamlit.log") as (url, _):
        yield url


@pytest.fixture(scope="module")
def models():
    import ae_core

    if len(SHIPPED_KINDS) < 2:
        pytest.skip("two shipped kinds are needed to compare")
    return {side: ae_core.load_autoencoder(2, "mnist", kind=kind) for side, kind in zip(("left", "right"), SHIPPED_KINDS)}


@pytest.fixture(scope="module")
def codes(models, test_set):
    return {side: model.encode(test_set[0]) for side, model in models.items()}


@pytest.fixture
def compare_page(chromium, server, models):
    sent: list[float] = []
    left, right = (models[side].kind for side in ("left", "right"))
    page = _open(chromium.new_context(viewport={"width": 1500, "height": 1400}),
                 f"{server}/compare?left={left}&right={right}", sent)
    for side in ("left", "right"):  # Both charts drawn and filled by the browser.
        page.wait_for_function(f"() => {{ const gd = document.querySelector('.st-key-compare_{side} .js-plotly-plot');"
                               " return gd && gd.dataset.points === '10000'; }")
    # The decoders arrive as assets after the view: the frame counters start once both have.
    page.wait_for_function("(c) => c.dataset.frames !== undefined", arg=_canvas(page, "right").element_handle())
    yield page, sent
    page.close()


def _canvas(page, side: str):
    return page.locator(f".st-key-live_compare canvas[data-part={side}Canvas]")




@pytest.mark.browser
@pytest.mark.slow
def test_both_maps_hold_the_10000_test_images_at_their_models_codes(compare_page, codes):
    page, _ = compare_page
    for side in ("left", "right"):
        shown = page.evaluate(f"""() => {{ const gd = document.querySelector('.st-key-compare_{side} .js-plotly-plot');
            const z = new Array(10000);
            gd.data.forEach((t) => {{ if (t.customdata) for (let i = 0; i < t.x.length; i++)
                z[Number(t.customdata[i])] = [t.x[i], t.y[i]]; }});
            return z; }}""")
        assert None not in shown
        assert np.abs(np.asarray(shown) - codes[side]).max() < 1e-4, side


@pytest.mark.browser
@pytest.mark.slow
def test_hover_draws_both_models_images_without_the_server(compare_page, models, codes):
    page, sent = compare_page
    # Before any move: the left model's image at the origin, and the right model's at the test
    # image nearest the origin on the left map.
    page.wait_for_function("(c) => c.dataset.z === '[0,0]'", arg=_canvas(page, "left").element_handle())
    nearest = int(np.argmin((codes["left"] ** 2).sum(axis=1)))
    assert int(_canvas(page, "right").get_attribute("data-index")) == nearest
    assert np.abs(_painted(_canvas(page, "left")) - _keras_grey(models["left"], (0.0, 0.0))).max() <= 1
    assert np.abs(_painted(_canvas(page, "right")) - _keras_grey(models["right"], codes["right"][nearest])).max() <= 1
    rng = np.random.default_rng(3)
    started = time.monotonic()
    previous = {}
    for move in range(12):
        hovered = ("left", "right")[move % 2]
        other = "right" if hovered == "left" else "left"
        area = _plot_area(page, f"compare_{hovered}")
        fx, fy = rng.uniform(0.1, 0.9, size=2)
        page.mouse.move(area["left"] + fx * area["width"], area["top"] + fy * area["height"])
        z = (area["xrange"][0] + fx * (area["xrange"][1] - area["xrange"][0]),
             area["yrange"][1] - fy * (area["yrange"][1] - area["yrange"][0]))
        page.wait_for_function("([c, z]) => { const s = JSON.parse(c.dataset.z || 'null');"
                               " return s && Math.abs(s[0] - z[0]) < 0.02 && Math.abs(s[1] - z[1]) < 0.02; }",
                               arg=[_canvas(page, hovered).element_handle(), list(z)], polling="raf")
        shown_z = np.asarray(json.loads(_canvas(page, hovered).get_attribute("data-z")))
        # The other model: the test image nearest to the pointer in the hovered map, at its own code.
        nearest = int(np.argmin(((codes[hovered] - shown_z) ** 2).sum(axis=1)))
        assert int(_canvas(page, other).get_attribute("data-index")) == nearest
        other_z = np.asarray(json.loads(_canvas(page, other).get_attribute("data-z")))
        assert other_z == pytest.approx(codes[other][nearest], abs=1e-5)
        images = {hovered: _painted(_canvas(page, hovered)), other: _painted(_canvas(page, other))}
        assert np.abs(images[hovered] - _keras_grey(models[hovered], shown_z)).max() <= 1, move
        assert np.abs(images[other] - _keras_grey(models[other], other_z)).max() <= 1, move
        for side in ("left", "right"):  # Each stop changes both images.
            assert side not in previous or not np.array_equal(previous[side], images[side]), (move, side)
        previous = images
        # The marks are placed on the next animation frame after the images (once seen unset).
        page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
        mark = page.evaluate(f"() => document.querySelector('.st-key-compare_{other} svg.nearest-mark').dataset.index")
        assert mark == str(nearest), (move, mark, nearest)
    assert [t for t in sent if t >= started] == []  # Not one websocket frame to the server.


@pytest.mark.browser
@pytest.mark.slow
def test_a_click_rings_the_same_test_image_in_both_maps(compare_page, codes):
    from harness.browser import PICK_ISOLATED_POINT

    page, _ = compare_page
    target = page.evaluate(PICK_ISOLATED_POINT, [6])  # In the first chart on the page: the left.
    page.mouse.move(target["px"], target["py"])
    page.wait_for_timeout(300)  # Plotly's hover must register first.
    page.mouse.click(target["px"], target["py"])
    for side in ("left", "right"):
        page.wait_for_function(f"(i) => {{ const r = document.querySelector('.st-key-compare_{side} svg.chosen-ring');"
                               " return r && r.dataset.index === String(i) && r.style.display !== 'none'; }",
                               arg=target["index"])
        ring = page.evaluate(f"""() => {{ const r = document.querySelector('.st-key-compare_{side} svg.chosen-ring');
            const box = r.querySelector('circle').getBoundingClientRect();
            return {{x: box.left + box.width / 2, y: box.top + box.height / 2, z: JSON.parse(r.dataset.z)}}; }}""")
        assert ring["z"] == pytest.approx(codes[side][target["index"]].tolist(), abs=1e-5)
        area = _plot_area(page, f"compare_{side}")
        expected = (area["left"] + (ring["z"][0] - area["xrange"][0]) / np.ptp(area["xrange"]) * area["width"],
                    area["top"] + (area["yrange"][1] - ring["z"][1]) / np.ptp(area["yrange"]) * area["height"])
        assert (ring["x"], ring["y"]) == pytest.approx(expected, abs=1.5)
    left_ring = page.evaluate("() => document.querySelector('.st-key-compare_left svg.chosen-ring circle')"
                              ".getBoundingClientRect().left")
    assert left_ring + 11 == pytest.approx(target["px"], abs=1.5)  # On the clicked point.


def _drag(page, side: str, tool: str, corners: list[tuple[float, float]]) -> None:
    """With the toolbar's ``tool`` ("select" or "lasso"), drag over ``side``'s plot along
    ``corners`` (fractions of the plot area), in ten moves an edge."""
    area = _plot_area(page, f"compare_{side}")
    page.locator(f".st-key-compare_{side} .modebar-btn[data-val={tool}]").click()
    page.mouse.move(area["left"] + corners[0][0] * area["width"], area["top"] + corners[0][1] * area["height"])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
        for step in range(1, 11):
            fraction = step / 10
            page.mouse.move(area["left"] + (x0 + fraction * (x1 - x0)) * area["width"],
                            area["top"] + (y0 + fraction * (y1 - y0)) * area["height"])
    page.mouse.up()


def _linked_selection(page, side: str) -> list[int]:
    """The test indices selected in ``side``'s map once the other map's selection reached it."""
    chart = f".st-key-compare_{side} .js-plotly-plot"
    page.wait_for_function(f"() => (document.querySelector('{chart}').dataset.linkedSelection || '') !== ''")
    return page.evaluate(f"""() => {{ const gd = document.querySelector('{chart}'); const chosen = [];
        gd.data.forEach((t) => {{ if (t.customdata && t.selectedpoints)
            for (const i of t.selectedpoints) chosen.push(Number(t.customdata[i])); }});
        return chosen; }}""")


@pytest.mark.browser
@pytest.mark.slow
def test_a_box_selection_in_one_map_selects_the_same_images_in_the_other(compare_page, codes):
    page, _ = compare_page
    _drag(page, "left", "select", [(0.35, 0.3), (0.6, 0.55)])
    selected = _linked_selection(page, "right")
    # The images whose left code lies in the box plotly drew, which it keeps in the layout.
    box = page.evaluate("() => document.querySelector('.st-key-compare_left .js-plotly-plot').layout.selections[0]")
    z1, z2 = sorted((box["x0"], box["x1"])), sorted((box["y0"], box["y1"]))
    inside = np.flatnonzero((codes["left"][:, 0] >= z1[0]) & (codes["left"][:, 0] <= z1[1])
                            & (codes["left"][:, 1] >= z2[0]) & (codes["left"][:, 1] <= z2[1]))
    assert len(inside) > 20
    assert len(set(selected) ^ set(inside.tolist())) <= 2, (len(selected), len(inside))  # An edge point or two.


def _inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Which ``points`` (N, 2) lie inside ``polygon`` (M, 2), by counting edge crossings."""
    inside = np.zeros(len(points), dtype=bool)
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0)):
        crosses = (y0 > points[:, 1]) != (y1 > points[:, 1])
        at = (x1 - x0) * (points[:, 1] - y0) / np.where(y1 == y0, np.inf, y1 - y0) + x0
        inside ^= crosses & (points[:, 0] < at)
    return inside


@pytest.mark.browser
@pytest.mark.slow
def test_a_lasso_in_one_map_selects_the_same_images_in_the_other(compare_page, codes):
    page, _ = compare_page
    _drag(page, "right", "lasso", [(0.3, 0.3), (0.7, 0.38), (0.45, 0.7), (0.3, 0.3)])  # A triangle.
    selected = _linked_selection(page, "left")
    # The images whose right code lies in the lasso plotly drew, which it keeps as a path.
    lasso = page.evaluate("() => document.querySelector('.st-key-compare_right .js-plotly-plot').layout.selections[0]")
    polygon = np.array([[float(number) for number in vertex.split(",")]
                        for vertex in lasso["path"].strip("MZ").split("L")])
    inside = np.flatnonzero(_inside_polygon(codes["right"], polygon))
    assert len(inside) > 20
    assert len(set(selected) ^ set(inside.tolist())) <= 2, (len(selected), len(inside))  # An edge point or two.


# --- What only a VAE has -------------------------------------------------------------------------

needs_vae = pytest.mark.skipif("vae" not in SHIPPED_KINDS, reason="no shipped MNIST VAE")


@needs_vae
def test_the_map_draws_the_chosen_images_posterior_as_its_mean_and_a_2_sigma_ellipse(test_set):
    import ae_core
    from test_app_views import _figure

    mean, log_var = ae_core.load_autoencoder(2, "mnist", kind="vae").encode_posterior(test_set[0][[123]])
    sigma = np.exp(log_var[0] / 2)
    app = open_app("pages/map.py", kind="vae", index="123")
    shapes = {shape.get("name"): shape for shape in _figure(app)["layout"]["shapes"]}
    ellipse = shapes["posterior 2σ"]
    assert ellipse["type"] == "circle"
    assert [ellipse["x0"], ellipse["x1"]] == pytest.approx([mean[0, 0] - 2 * sigma[0], mean[0, 0] + 2 * sigma[0]], abs=1e-5)
    assert [ellipse["y0"], ellipse["y1"]] == pytest.approx([mean[0, 1] - 2 * sigma[1], mean[0, 1] + 2 * sigma[1]], abs=1e-5)
    assert 0.01 < sigma.min() and sigma.max() < 1  # A real posterior: narrower than the prior.
    # The plain autoencoder has no posterior, and its map no ellipse.
    plain = open_app("pages/map.py", kind="ae", index="123")
    assert "posterior 2σ" not in {shape.get("name") for shape in _figure(plain)["layout"]["shapes"]}


@needs_vae
def test_sampling_from_the_prior_decodes_16_standard_normal_codes():
    import ae_core
    from PIL import Image

    from ae_core import store

    app = open_app("pages/grid.py", kind="vae")
    app.button(key="sample_prior").click().run()
    app.button(key="sample_prior").click().run()  # The second draw.
    codes = np.random.default_rng(2).standard_normal((16, 2)).astype(np.float32)
    caption = next(c.value for c in app.caption if c.value.startswith("Draw 2 "))
    assert caption.endswith(", ".join(f"({z1:.2f}, {z2:.2f})" for z1, z2 in codes))
    name = next(m.value for m in app.markdown if "decoded from the prior" in m.value).split("assets/")[1].rstrip(")")
    shown = np.asarray(Image.open(store.asset_path(name)), dtype=np.int64)[::4, ::4]  # Enlarged 4 times.
    decoded = ae_core.load_autoencoder(2, "mnist", kind="vae").decode(codes)[..., 0]
    expected = np.round(decoded.reshape(4, 4, 28, 28).transpose(0, 2, 1, 3).reshape(112, 112) * 255)
    assert np.abs(shown - expected).max() <= 1
    assert decoded.std(axis=0).mean() > 0.05  # Sixteen different images.


@needs_vae
def test_the_vae_grid_can_span_the_prior():
    from test_app_views import _figure

    app = open_app("pages/grid.py", kind="vae", span="prior", size="5")
    ticks = [float(text) for text in _figure(app)["layout"]["xaxis"]["ticktext"]]
    assert ticks == pytest.approx(np.linspace(-2, 2, 5).tolist())
    window = open_app("pages/grid.py", kind="vae", size="5")
    assert [float(t) for t in _figure(window)["layout"]["xaxis"]["ticktext"]] == pytest.approx(np.linspace(-5, 5, 5).tolist())


def test_hostile_compare_links_are_dropped_with_one_line_each():
    app = open_app("pages/compare.py", left="1e309", right="nan", kind="Infinity")
    notes = [caption.value for caption in app.caption if "was ignored" in caption.value]
    assert len(notes) == 3, notes


def test_compare_with_one_kind_shows_it_on_both_sides_and_says_why(only_ae):
    import ae_core

    assert ae_core.available_kinds("mnist", only_ae) == ("ae",)
    app = open_app("pages/compare.py", model=only_ae)
    assert not app.exception, [e.value for e in app.exception]
    assert app.selectbox(key="left").value == app.selectbox(key="right").value == "ae"
    assert any("both maps show it" in info.value for info in app.info)


# --- The page's websocket view (the protocol client) ---------------------------------------------

@pytest.mark.slow
def test_the_compare_view_is_small_and_every_page_opens_with_every_kind_over_the_websocket(server):
    from harness.protocol import Session
    from test_capacity import VIEW_BUDGET

    if len(SHIPPED_KINDS) < 2:
        pytest.skip("two shipped kinds are needed to compare")
    query = f"left={SHIPPED_KINDS[0]}&right={SHIPPED_KINDS[1]}"
    with Session(server) as session:
        session.open("compare", query)
    with Session(server) as session:  # Warm: the points and decoders travel as cached assets.
        run = session.open("compare", query)
    assert run.exceptions() == []
    assert len(run.elements("plotly_chart")) == 2
    assert run.bytes <= VIEW_BUDGET, run.bytes
    for kind in SHIPPED_KINDS:
        for page in ("map", "grid", "sliders", "upload", "paths", "compare", "train"):
            with Session(server) as session:
                assert session.open(page, f"kind={kind}").exceptions() == [], (page, kind)
