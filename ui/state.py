"""Everything the pages share across reruns and sessions, cached once per server.

Models and the encoded test set are ``st.cache_resource``: one copy per process, shared by
every session, never copied. Callers must treat them as read-only (the arrays are flagged
read-only by ``ae_core``).

What every view of a model needs and nothing changes (the test set's codes, labels and
errors, the decoder for the browser, the pad's raster) comes from ``ae_core.store``: read
from disk without TensorFlow once a server has computed it, and served to the browser as
immutable assets (``*_asset`` below give their names). A model's card is read and checked
without TensorFlow too (``Model``); TensorFlow, the models and the test images load in the
background soon after the server starts (``ui/warmup.py``), or when a page first needs them.

What a page shows depends on the session's ``Choice`` in the sidebar: a dataset and a 2-D
model (the shipped one or one trained in the app). A page reads it once with ``current()``
and passes it to the functions here, so each dataset and model is loaded once per server
whoever asks for it.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import ae_core
from ae_core import explore, store
from ae_core.config import MODEL_KINDS, SHIPPED, WINDOW
from ae_core.datasets import TABLE
from ae_core.export import decoder_bundle as export_decoder

from . import assets, figures, images, links

DATASETS = {dataset.name: dataset.title for dataset in TABLE}
# What one test example is called on the page, by dataset.
ITEM = {dataset.name: (dataset.item, dataset.items) for dataset in TABLE}


@dataclass(frozen=True)
class Choice:
    dataset: str = "mnist"  # A key of DATASETS.
    name: str = SHIPPED  # "shipped" or the folder name of a model trained in the app.
    kind: str = "ae"  # One of ae_core.config.MODEL_KINDS: which model of that name.

    @property
    def class_names(self) -> tuple[str, ...]:
        return ae_core.CLASS_NAMES[self.dataset]

    def item(self, count: int = 1) -> str:
        """"digit"/"digits" for MNIST, "image"/"images" for Fashion-MNIST."""
        singular, plural = ITEM[self.dataset]
        return singular if count == 1 else plural


def current() -> Choice:
    """The session's dataset and model, as the sidebar set them (defaults otherwise)."""
    dataset = st.session_state.get("dataset") or "mnist"
    kind = st.session_state.get("kind") or "ae"
    return Choice(dataset if dataset in DATASETS else "mnist", st.session_state.get("model") or SHIPPED,
                  kind if kind in MODEL_KINDS else "ae")


def stop_with(error: Exception) -> None:
    """Show a failure the user can act on, and end this page's run (no traceback)."""
    st.error(str(error))
    st.stop()


@contextlib.contextmanager
def loading_for_the_server_lifetime():
    """Load something that lives as long as the server, then hide it from the collector.

    Importing TensorFlow leaves hundreds of thousands of objects that live as long as the
    process. A full garbage collection walks all of them, which a user feels (figures in
    docs/performance.md), and the allocations of a few reruns are enough to trigger one. ``gc.freeze()`` moves every
    object alive now out of the collector's view for good, which suits a model and data
    cached for the life of the process. The collector is also paused while loading,
    because collecting over a growing import graph slows the import itself.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()  # Free the loading's own garbage first, so that none of it is frozen.
        gc.freeze()


# --- Models and data ---------------------------------------------------------------------

@st.cache_resource(show_spinner="Loading the trained model…")
def _load_model(latent_dim: int, dataset: str, name: str, kind: str = "ae") -> ae_core.Autoencoder:
    store.import_tensorflow()  # Or wait while the background loading imports it.
    with loading_for_the_server_lifetime():
        return ae_core.load_autoencoder(latent_dim, dataset, name, kind)


class Model:
    """A model as the pages use it: its checked ``card`` at once, without TensorFlow, and
    ``ae_core.Autoencoder``'s methods (``encode``, ``decode``, …), which load the model the
    first time one is called (at once if the background loading has finished)."""

    def __init__(self, latent_dim: int, dataset: str, name: str, kind: str = "ae"):
        self.latent_dim, self.dataset, self.name, self.kind = latent_dim, dataset, name, kind
        self.card = store.checked_card(latent_dim, dataset, name, kind)  # WeightsError when unusable.

    def __getattr__(self, attribute: str):
        return getattr(_load_model(self.latent_dim, self.dataset, self.name, self.kind), attribute)


@st.cache_resource(show_spinner=False)
def _model(latent_dim: int, dataset: str, name: str, kind: str = "ae") -> Model:
    return Model(latent_dim, dataset, name, kind)


def model(choice: Choice) -> Model:
    """The chosen 2-D model, of the chosen kind."""
    return _model(2, choice.dataset, choice.name, choice.kind)


def model_10d(choice: Choice) -> Model:
    """The shipped 10-D model of the chosen dataset, for comparison."""
    return _model(10, choice.dataset, SHIPPED)


def models_or_stop(choice: Choice) -> tuple[Model, Model]:
    """The 2-D and 10-D models, or the retrain message and the end of the page's run."""
    try:
        return model(choice), model_10d(choice)
    except ae_core.WeightsError as error:
        stop_with(error)


@st.cache_resource(show_spinner="Loading the test set…")
def test_set(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    store.import_tensorflow()  # Or wait while the background loading imports it.
    with loading_for_the_server_lifetime():  # tfds brings its own large import graph.
        return ae_core.load_mnist("test", dataset)


def test_images_or_stop(choice: Choice) -> np.ndarray:
    """The test images, or the reason they cannot be loaded and the end of the page's run."""
    try:
        return test_set(choice.dataset)[0]
    except ae_core.DataUnavailableError as error:
        stop_with(error)


@st.cache_resource(show_spinner="Encoding the 10,000 test images…")
def map_data(choice: Choice) -> store.MapData:
    """The chosen 2-D model's codes, labels and errors of the test set, and its decoder bundle."""
    return store.map_data(choice.dataset, choice.name, choice.kind)


def code_extent(choice: Choice) -> float:
    """The largest |z1| or |z2| of the test codes: a UMAP-loss model's reach well beyond the window."""
    return float(np.abs(test_latents(choice)).max())


@st.cache_resource(show_spinner="Encoding the 10,000 test images…")
def test_latents(choice: Choice, latent_dim: int = 2) -> np.ndarray:
    if latent_dim == 2:
        return map_data(choice).latents
    chosen = model_10d(choice)
    return store.kept(choice.dataset, (chosen.card,), "latents",
                      lambda: chosen.encode(test_set(choice.dataset)[0]))


@st.cache_resource
def test_table(choice: Choice) -> pd.DataFrame:
    """index, label, z1, z2 of every test image under the chosen 2-D model."""
    return explore.latent_table(test_latents(choice), map_data(choice).labels)


def test_table_or_none(choice: Choice) -> tuple[pd.DataFrame | None, str | None]:
    """The table, or ``(None, message)`` when the test set cannot be loaded (weights still work)."""
    try:
        return test_table(choice), None
    except ae_core.DataUnavailableError as error:
        return None, str(error)


def test_table_or_stop(choice: Choice) -> pd.DataFrame:
    """The table, or the reason it cannot be loaded and the end of the page's run."""
    try:
        return test_table(choice)
    except ae_core.DataUnavailableError as error:
        stop_with(error)


def models_and_table_or_stop(choice: Choice) -> tuple[Model, Model, pd.DataFrame]:
    """The 2-D and 10-D models and the test table, or the first reason one is missing and the
    end of the page's run. The models come first: a missing model is the likelier fix, and
    the table is the 2-D model's encoding."""
    model_2d, model_10d = models_or_stop(choice)
    return model_2d, model_10d, test_table_or_stop(choice)


# --- Reconstruction errors and exports -----------------------------------------------------

def test_errors(choice: Choice) -> np.ndarray:
    """Each test image's reconstruction error under the chosen 2-D model."""
    return map_data(choice).errors


@st.cache_resource
def test_table_with_errors(choice: Choice) -> pd.DataFrame:
    """``test_table`` plus each image's reconstruction_error: what the CSV export holds."""
    return explore.latent_table(test_latents(choice), map_data(choice).labels, test_errors(choice))


@st.cache_resource(show_spinner=False)
def latents_csv(choice: Choice) -> bytes:
    """The CSV download. Its first column is named for the order it follows: tensorflow-datasets'
    order, which is the app's ``index`` too, not the original files' order."""
    table = test_table_with_errors(choice).rename(columns={"index": "tfds_index"})
    return table.to_csv(index=False, float_format="%.6g").encode()


@dataclass(frozen=True)
class WorstImage:
    index: int  # Position in the test set.
    label: int
    error: float  # Mean squared error per pixel of its 2-D reconstruction.
    pair: np.ndarray  # The image above its reconstruction, (56, 28).


@st.cache_resource(show_spinner=False)
def worst_images(choice: Choice, count: int = 20) -> list[WorstImage]:
    images, labels = test_set(choice.dataset)
    errors = test_errors(choice)
    chosen = explore.worst(errors, count)
    reconstructions = model(choice).reconstruct(images[chosen])
    return [WorstImage(int(i), int(labels[i]), float(errors[i]),
                       explore.tile(np.stack([images[i], reconstruction]), columns=1))
            for i, reconstruction in zip(chosen, reconstructions)]


# --- Figures and pictures ------------------------------------------------------------------

@st.cache_resource(max_entries=8, show_spinner=False)
def _manifold(choice: Choice, density: int) -> tuple[str, np.ndarray, np.ndarray]:
    """The decoded plane under the map as an asset's name (ink dark on light), and its codes."""
    image, z1_values, z2_values = explore.decode_grid(model(choice), density, *WINDOW)
    return store.put_asset(images.to_png(1.0 - np.asarray(image)), "png"), z1_values, z2_values


@st.cache_resource(max_entries=8, show_spinner="Decoding and re-encoding the plane…")
def _drift(choice: Choice, size: int) -> tuple[str, float, np.ndarray, np.ndarray]:
    """The drift map under the map as an asset's name (``figures.add_drift`` gives its layout),
    its largest value, and its codes."""
    drift, z1_values, z2_values = explore.reencoding_drift(model(choice), size, *WINDOW)
    values = np.ascontiguousarray(drift, dtype="<f4")
    return store.put_asset(values.tobytes(), "bin"), float(values.max()), z1_values, z2_values


@st.cache_resource(max_entries=16, show_spinner=False)
def map_figure(choice: Choice, colour_by: str = "label", background: str = "none", density: int = 20,
               opacity: float = 0.5, ring: int | None = None) -> go.Figure:
    """The latent map, built once per choice of colouring, background and ringed image.

    Its point traces are empty: the page's ``live.map_points`` fills them in the browser from
    the points asset. Re-sending an unchanged figure costs nothing in the browser, so a click
    on the map only redraws the panel beside it.
    """
    figure = figures.latent_map(choice.class_names, colour_by, test_errors(choice), half_width=code_extent(choice))
    # What st.plotly_chart gives a chart whose clicks select points, written into the figure:
    # Streamlit sets it in its own copy of the figure a moment after drawing it, and a restyle
    # that fills the points in between (ui/live/map_points.js) reports the figure without it
    # back to Streamlit, whose clicks then no longer select.
    figure.update_layout(clickmode="event+select", dragmode="pan", hovermode="closest")
    if background in links.DECODED_PLANE:
        name, z1_values, z2_values = _manifold(choice, density)
        figures.add_manifold(figure, assets.url(name), z1_values, z2_values, opacity)
    elif background == "drift":
        name, largest, z1_values, z2_values = _drift(choice, 2 * density)
        figures.add_drift(figure, assets.url(name), largest, z1_values, z2_values, opacity)
    elif background != "none":
        raise ValueError(f"background must be 'none', 'digits', 'images' or 'drift', not {background!r}.")
    if ring is not None:
        latents = test_latents(choice)
        figures.add_ring(figure, (float(latents[ring, 0]), float(latents[ring, 1])))
    return figure


@st.cache_resource(max_entries=8, show_spinner=False)
def map_with_path(choice: Choice, start: tuple[float, float], end: tuple[float, float]) -> go.Figure:
    """The plain latent map with the segment from ``start`` to ``end`` drawn on it."""
    figure = go.Figure(map_figure(choice))  # A copy: the cached map stays as it is.
    figure.update_layout(clickmode=None, dragmode=None, hovermode=None)  # Not selectable here.
    figures.add_segment(figure, start, end)
    return figure


@st.cache_resource
def map_raster(choice: Choice) -> np.ndarray:
    """The small static latent map under the pad and the upload's marker."""
    table = test_table(choice)
    return images.scatter_raster(table[["z1", "z2"]].to_numpy(), table["label"].to_numpy(),
                                 figures.palette_rgb())


@st.cache_resource
def raster_asset(choice: Choice) -> str:
    """``map_raster`` as a PNG asset's name, for the pad; a blank square when there is no test set."""
    try:
        raster = map_raster(choice)
    except ae_core.DataUnavailableError:
        raster = np.full((240, 240, 3), 255, dtype=np.uint8)
    return store.put_asset(images.to_png(raster), "png")


@st.cache_resource(max_entries=64, show_spinner=False)
def decoded_grid(choice: Choice, size: int, low: float, high: float):
    """The decoded grid, its z values, and its picture as a PNG asset's name."""
    image, z1_values, z2_values = explore.decode_grid(model(choice), size, low, high)
    return image, z1_values, z2_values, store.put_asset(images.to_png(image), "png")


@st.cache_resource
def reconstruction_strip(choice: Choice, count: int = 8) -> np.ndarray:
    """Test images on top, their 2-D then 10-D reconstructions beneath, as one image; kept on
    disk, since the sidebar of the first page after a start shows it."""
    two, ten = model(choice), model_10d(choice)

    def make() -> np.ndarray:
        sample = test_set(choice.dataset)[0][:count]
        return explore.tile(np.concatenate([sample, two.reconstruct(sample), ten.reconstruct(sample)]),
                            columns=count)

    return store.kept(choice.dataset, (two.card, ten.card), f"strip{count}", make)


def decoder_bundle(choice: Choice) -> bytes:
    """The chosen 2-D model's decoder for the browser (``ae_core.export``); without the test
    set, which ``map_data`` needs when nothing is on disk yet, it is exported on its own."""
    try:
        return map_data(choice).bundle
    except ae_core.DataUnavailableError:
        return export_decoder(model(choice))


@st.cache_resource(show_spinner=False)
def decoder_asset(choice: Choice) -> str:
    """The name of the chosen 2-D model's decoder bundle as an asset."""
    return store.put_asset(decoder_bundle(choice), "bin")


@st.cache_resource(show_spinner=False)
def points_asset(choice: Choice) -> str:
    """The name of the map's points (``ae_core.store.points_blob``) as an asset."""
    return store.put_asset(store.points_blob(map_data(choice)), "bin")


# --- Training ----------------------------------------------------------------------------------

@st.cache_resource
def trainer():
    """The server's one trainer: at most one training runs at a time, whoever starts it."""
    from ae_core.jobs import Trainer

    return Trainer()


@st.cache_resource(max_entries=8, show_spinner=False)
def formation_figure(choice: Choice) -> go.Figure | None:
    """The chosen model's epoch-by-epoch map as an animation, if its training recorded one.

    A model's files never change once it exists, so its animation is built once.
    """
    if choice.kind != "ae":
        return None  # Recordings are read under the autoencoder's file name; another kind's would be its.
    recorded = ae_core.inference.load_formation(choice.dataset, choice.name)
    if recorded is None:
        return None
    return figures.formation_figure(recorded["codes"], recorded["labels"], choice.class_names,
                                    recorded["val_loss"])
