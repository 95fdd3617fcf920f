"""Everything the pages share across reruns and sessions, cached once per server.

Models and the encoded test set are ``st.cache_resource``: one copy per process, shared
by every session, never copied. Callers must treat them as read-only (the arrays are
flagged read-only by ``ae_core``).

What a page shows depends on the session's choice in the sidebar: a dataset and a 2-D
model (the shipped one or one trained in the app). The public functions here read that
choice (``current()``); the cached functions beneath them take it as arguments, so each
dataset and model is loaded once per server whoever asks for it.
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
from ae_core import explore
from ae_core.config import SHIPPED

from . import figures

DATASETS = {"mnist": "MNIST digits", "fashion_mnist": "Fashion-MNIST clothes"}


@dataclass(frozen=True)
class Choice:
    dataset: str = "mnist"  # A key of DATASETS.
    name: str = SHIPPED  # "shipped" or the folder name of a model trained in the app.


def current() -> Choice:
    """The session's dataset and model, as the sidebar set them (defaults otherwise)."""
    dataset = st.session_state.get("dataset") or "mnist"
    return Choice(dataset if dataset in DATASETS else "mnist", st.session_state.get("model") or SHIPPED)


def class_names() -> tuple[str, ...]:
    return ae_core.CLASS_NAMES[current().dataset]


def stop_with(error: Exception) -> None:
    """Show a failure the user can act on, and end this page's run (no traceback)."""
    st.error(str(error))
    st.stop()


@contextlib.contextmanager
def loading_for_the_server_lifetime():
    """Load something that lives as long as the server, then hide it from the collector.

    Importing TensorFlow leaves some 340,000 objects that live as long as the process. A
    full garbage collection walks all of them (about 200 ms on this machine), and the
    allocations of a few reruns are enough to trigger one: a slider move took 700 ms instead
    of 200 ms. ``gc.freeze()`` moves every object alive now out of the collector's view for
    good, which suits a model and data cached for the life of the process. The collector is
    also paused while loading, because collecting over a growing import graph slows the
    import itself by about a second.
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
def _model(latent_dim: int, dataset: str, name: str) -> ae_core.Autoencoder:
    with loading_for_the_server_lifetime():
        return ae_core.load_autoencoder(latent_dim, dataset, name)


def model(latent_dim: int = 2) -> ae_core.Autoencoder:
    """The chosen 2-D model, or the shipped 10-D model of the chosen dataset."""
    choice = current()
    return _model(latent_dim, choice.dataset, choice.name if latent_dim == 2 else SHIPPED)


def model_or_stop(latent_dim: int = 2) -> ae_core.Autoencoder:
    try:
        return model(latent_dim)
    except ae_core.WeightsError as error:
        stop_with(error)


@st.cache_resource(show_spinner="Loading the test set…")
def _test_set(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    with loading_for_the_server_lifetime():  # tfds brings its own large import graph.
        return ae_core.load_mnist("test", dataset)


def test_set() -> tuple[np.ndarray, np.ndarray]:
    return _test_set(current().dataset)


@st.cache_resource(show_spinner="Encoding the 10,000 test images…")
def _test_latents(latent_dim: int, dataset: str, name: str) -> np.ndarray:
    images, _ = _test_set(dataset)
    latents = _model(latent_dim, dataset, name).encode(images)
    latents.setflags(write=False)
    return latents


def test_latents(latent_dim: int = 2) -> np.ndarray:
    choice = current()
    return _test_latents(latent_dim, choice.dataset, choice.name if latent_dim == 2 else SHIPPED)


@st.cache_resource
def _test_table(dataset: str, name: str) -> pd.DataFrame:
    _, labels = _test_set(dataset)
    return explore.latent_table(_test_latents(2, dataset, name), labels)


def test_table() -> pd.DataFrame:
    """index, label, z1, z2 of every test image under the chosen 2-D model."""
    choice = current()
    return _test_table(choice.dataset, choice.name)


def test_table_or_none() -> tuple[pd.DataFrame | None, str | None]:
    """The table, or ``(None, message)`` when the test set cannot be loaded (weights still work)."""
    try:
        return test_table(), None
    except ae_core.DataUnavailableError as error:
        return None, str(error)


# --- Reconstruction errors and exports -----------------------------------------------------

@st.cache_resource(show_spinner="Measuring every test image's reconstruction error…")
def _test_errors(dataset: str, name: str) -> np.ndarray:
    images, _ = _test_set(dataset)
    errors = explore.reconstruction_errors(_model(2, dataset, name), images)
    errors.setflags(write=False)
    return errors


def test_errors() -> np.ndarray:
    """Each test image's reconstruction error under the chosen 2-D model (about 1.5 s, once)."""
    choice = current()
    return _test_errors(choice.dataset, choice.name)


@st.cache_resource
def _test_table_with_errors(dataset: str, name: str) -> pd.DataFrame:
    _, labels = _test_set(dataset)
    return explore.latent_table(_test_latents(2, dataset, name), labels, _test_errors(dataset, name))


def test_table_with_errors() -> pd.DataFrame:
    """``test_table()`` plus each image's reconstruction_error: what the CSV export holds."""
    choice = current()
    return _test_table_with_errors(choice.dataset, choice.name)


@st.cache_resource(show_spinner=False)
def _latents_csv(dataset: str, name: str) -> bytes:
    return _test_table_with_errors(dataset, name).to_csv(index=False, float_format="%.6g").encode()


def latents_csv_maker():
    """A no-argument function making the CSV, for ``st.download_button`` to call on click.

    The choice is read now: the click runs the function on another thread, without the
    session's state.
    """
    choice = current()
    return lambda: _latents_csv(choice.dataset, choice.name)


@dataclass(frozen=True)
class WorstImage:
    index: int  # Position in the test set.
    label: int
    error: float  # Mean squared error per pixel of its 2-D reconstruction.
    pair: np.ndarray  # The image above its reconstruction, (56, 28).


@st.cache_resource(show_spinner=False)
def _worst(count: int, dataset: str, name: str) -> list[WorstImage]:
    images, labels = _test_set(dataset)
    errors = _test_errors(dataset, name)
    chosen = explore.worst(errors, count)
    reconstructions = _model(2, dataset, name).reconstruct(images[chosen])
    return [WorstImage(int(i), int(labels[i]), float(errors[i]),
                       explore.tile(np.stack([images[i], reconstruction]), columns=1))
            for i, reconstruction in zip(chosen, reconstructions)]


def worst_images(count: int = 20) -> list[WorstImage]:
    choice = current()
    return _worst(count, choice.dataset, choice.name)


# --- Figures ----------------------------------------------------------------------------------

@st.cache_resource(max_entries=8, show_spinner=False)
def _manifold(density: int, dataset: str, name: str):
    return explore.decode_grid(_model(2, dataset, name), density, *explore.WINDOW)


@st.cache_resource(max_entries=8, show_spinner="Decoding and re-encoding the plane…")
def _drift(size: int, dataset: str, name: str):
    return explore.reencoding_drift(_model(2, dataset, name), size, *explore.WINDOW)


@st.cache_resource(max_entries=16, show_spinner=False)
def _map_figure(colour_by: str, background: str, density: int, opacity: float, dataset: str,
                name: str) -> go.Figure:
    table = (_test_table_with_errors if colour_by == "error" else _test_table)(dataset, name)
    figure = figures.latent_map(table, ae_core.CLASS_NAMES[dataset], colour_by)
    if background == "digits":
        figures.add_manifold(figure, *_manifold(density, dataset, name), opacity)
    elif background == "drift":
        figures.add_drift(figure, *_drift(2 * density, dataset, name), opacity)
    elif background != "none":
        raise ValueError(f"background must be 'none', 'digits' or 'drift', not {background!r}.")
    return figure


def map_figure(colour_by: str = "label", background: str = "none", density: int = 20,
               opacity: float = 0.5) -> go.Figure:
    """The latent map, built once per choice of colouring and background and then shared.

    Re-sending an unchanged figure costs nothing in the browser, so a click on the map
    only redraws the panel beside it.
    """
    choice = current()
    return _map_figure(colour_by, background, density, opacity, choice.dataset, choice.name)


@st.cache_resource(max_entries=4, show_spinner=False)
def _map_with_ring(colour_by: str, background: str, density: int, opacity: float, index: int,
                   dataset: str, name: str) -> go.Figure:
    figure = go.Figure(_map_figure(colour_by, background, density, opacity, dataset, name))  # A copy.
    row = _test_table(dataset, name).iloc[index]
    figures.add_ring(figure, (float(row["z1"]), float(row["z2"])))
    return figure


def map_figure_with_ring(colour_by: str, background: str, density: int, opacity: float,
                         index: int) -> go.Figure:
    """``map_figure`` with test image ``index`` circled: for one chosen by link or typed."""
    choice = current()
    return _map_with_ring(colour_by, background, density, opacity, index, choice.dataset, choice.name)


@st.cache_resource(max_entries=8, show_spinner=False)
def _map_with_path(start: tuple[float, float], end: tuple[float, float], dataset: str,
                   name: str) -> go.Figure:
    figure = go.Figure(_map_figure("label", "none", 20, 0.5, dataset, name))  # A copy.
    figures.add_segment(figure, start, end)
    return figure


def map_with_path(start: tuple[float, float], end: tuple[float, float]) -> go.Figure:
    """The plain latent map with the segment from ``start`` to ``end`` drawn on it."""
    choice = current()
    return _map_with_path(start, end, choice.dataset, choice.name)


@st.cache_resource
def _map_raster(dataset: str, name: str) -> np.ndarray:
    table = _test_table(dataset, name)
    return explore.scatter_raster(table[["z1", "z2"]].to_numpy(), table["label"].to_numpy(),
                                  figures.palette_rgb())


def map_raster() -> np.ndarray:
    """The small static latent map on which the sliders and the upload draw a marker."""
    choice = current()
    return _map_raster(choice.dataset, choice.name)


@st.cache_data(max_entries=64, show_spinner=False)
def _decoded_grid(size: int, low: float, high: float, dataset: str, name: str):
    return explore.decode_grid(_model(2, dataset, name), size, low, high)


def decoded_grid(size: int, low: float, high: float):
    choice = current()
    return _decoded_grid(size, low, high, choice.dataset, choice.name)


@st.cache_resource
def _reconstruction_strip(count: int, dataset: str, name: str) -> np.ndarray:
    images, _ = _test_set(dataset)
    sample = images[:count]
    rows = [sample, _model(2, dataset, name).reconstruct(sample),
            _model(10, dataset, SHIPPED).reconstruct(sample)]
    return explore.tile(np.concatenate(rows), columns=count)


def reconstruction_strip(count: int = 8) -> np.ndarray:
    """Test images on top, their 2-D then 10-D reconstructions beneath, as one image."""
    choice = current()
    return _reconstruction_strip(count, choice.dataset, choice.name)


# --- Training ----------------------------------------------------------------------------------

@st.cache_resource
def trainer():
    """The server's one trainer: at most one training runs at a time, whoever starts it."""
    from ae_core.jobs import Trainer

    return Trainer()


@st.cache_resource(max_entries=8, show_spinner=False)
def _formation_figure(dataset: str, name: str) -> go.Figure | None:
    # A model's files never change once it exists, so its animation is built once.
    recorded = ae_core.inference.load_formation(dataset, name)
    if recorded is None:
        return None
    return figures.formation_figure(recorded["codes"], recorded["labels"],
                                    ae_core.CLASS_NAMES[dataset], recorded["val_loss"])


def formation_figure() -> go.Figure | None:
    """The chosen model's epoch-by-epoch map as an animation, if its training recorded one."""
    choice = current()
    return _formation_figure(choice.dataset, choice.name)
