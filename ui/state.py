"""Everything the pages share across reruns and sessions, cached once per server.

Models and the encoded test set are ``st.cache_resource``: one copy per process, shared
by every session, never copied. Callers must treat them as read-only (the arrays are
flagged read-only by ``ae_core``). Small derived results use ``st.cache_data``.
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

from . import figures

DATASET = "mnist"


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


@st.cache_resource(show_spinner="Loading the trained model…")
def model(latent_dim: int = 2) -> ae_core.Autoencoder:
    with loading_for_the_server_lifetime():
        return ae_core.load_autoencoder(latent_dim, DATASET)


def model_or_stop(latent_dim: int = 2) -> ae_core.Autoencoder:
    try:
        return model(latent_dim)
    except ae_core.WeightsError as error:
        stop_with(error)


@st.cache_resource(show_spinner="Loading the MNIST test set…")
def test_set() -> tuple[np.ndarray, np.ndarray]:
    with loading_for_the_server_lifetime():  # tfds brings its own large import graph.
        return ae_core.load_mnist("test", DATASET)


@st.cache_resource(show_spinner="Encoding the 10,000 test digits…")
def test_latents(latent_dim: int = 2) -> np.ndarray:
    images, _ = test_set()
    latents = model(latent_dim).encode(images)
    latents.setflags(write=False)
    return latents


@st.cache_resource
def test_table() -> pd.DataFrame:
    """index, label, z1, z2 of every test digit under the 2-D model."""
    _, labels = test_set()
    return explore.latent_table(test_latents(2), labels)


def test_table_or_none() -> tuple[pd.DataFrame | None, str | None]:
    """The table, or ``(None, message)`` when MNIST cannot be loaded (weights still work)."""
    try:
        return test_table(), None
    except ae_core.DataUnavailableError as error:
        return None, str(error)


@st.cache_resource(show_spinner="Measuring every test digit's reconstruction error…")
def test_errors() -> np.ndarray:
    """Each test digit's reconstruction error under the 2-D model (about 1.5 s, once)."""
    images, _ = test_set()
    errors = explore.reconstruction_errors(model(2), images)
    errors.setflags(write=False)
    return errors


@st.cache_resource
def test_table_with_errors() -> pd.DataFrame:
    """``test_table()`` plus each digit's reconstruction_error: what the CSV export holds."""
    _, labels = test_set()
    return explore.latent_table(test_latents(2), labels, test_errors())


@st.cache_resource
def latents_csv() -> bytes:
    return test_table_with_errors().to_csv(index=False, float_format="%.6g").encode()


@st.cache_resource(max_entries=8, show_spinner=False)
def manifold(density: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return explore.decode_grid(model(2), density, *explore.WINDOW)


@st.cache_resource(max_entries=8, show_spinner="Decoding and re-encoding the plane…")
def drift(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return explore.reencoding_drift(model(2), size, *explore.WINDOW)


@st.cache_resource(max_entries=16, show_spinner=False)
def map_figure(colour_by: str = "label", background: str = "none", density: int = 20,
               opacity: float = 0.5):
    """The latent map, built once per choice of colouring and background and then shared.

    Re-sending an unchanged figure costs nothing in the browser, so a click on the map
    only redraws the panel beside it.
    """
    table = test_table_with_errors() if colour_by == "error" else test_table()
    figure = figures.latent_map(table, ae_core.CLASS_NAMES[DATASET], colour_by)
    if background == "digits":
        figures.add_manifold(figure, *manifold(density), opacity)
    elif background == "drift":
        figures.add_drift(figure, *drift(2 * density), opacity)
    elif background != "none":
        raise ValueError(f"background must be 'none', 'digits' or 'drift', not {background!r}.")
    return figure


@st.cache_resource(max_entries=4, show_spinner=False)
def map_figure_with_ring(colour_by: str, background: str, density: int, opacity: float,
                         index: int):
    """``map_figure`` with test digit ``index`` circled: for a digit chosen by link or typed."""
    figure = go.Figure(map_figure(colour_by, background, density, opacity))  # A copy.
    row = test_table().iloc[index]
    figures.add_ring(figure, (float(row["z1"]), float(row["z2"])))
    return figure


@st.cache_resource(max_entries=8, show_spinner=False)
def map_with_path(start: tuple[float, float], end: tuple[float, float]):
    """The plain latent map with the segment from ``start`` to ``end`` drawn on it."""
    figure = go.Figure(map_figure())  # A copy.
    figures.add_segment(figure, start, end)
    return figure


@dataclass(frozen=True)
class WorstDigit:
    index: int  # Position in the MNIST test set.
    label: int
    error: float  # Mean squared error per pixel of its 2-D reconstruction.
    pair: np.ndarray  # The digit above its reconstruction, (56, 28).


@st.cache_resource(show_spinner=False)
def worst_digits(count: int = 20) -> list[WorstDigit]:
    images, labels = test_set()
    errors = test_errors()
    chosen = explore.worst(errors, count)
    reconstructions = model(2).reconstruct(images[chosen])
    return [WorstDigit(int(i), int(labels[i]), float(errors[i]),
                       explore.tile(np.stack([images[i], reconstruction]), columns=1))
            for i, reconstruction in zip(chosen, reconstructions)]


@st.cache_resource
def map_raster() -> np.ndarray:
    """The small static latent map on which the sliders and the upload draw a marker."""
    table = test_table()
    return explore.scatter_raster(table[["z1", "z2"]].to_numpy(), table["label"].to_numpy(),
                                  figures.palette_rgb())


@st.cache_data(max_entries=64, show_spinner=False)
def decoded_grid(size: int, low: float, high: float):
    return explore.decode_grid(model(2), size, low, high)


@st.cache_resource
def reconstruction_strip(count: int = 8) -> np.ndarray:
    """Test digits on top, their 2-D then 10-D reconstructions beneath, as one image."""
    images, _ = test_set()
    sample = images[:count]
    rows = [sample, model(2).reconstruct(sample), model(10).reconstruct(sample)]
    return explore.tile(np.concatenate(rows), columns=count)
