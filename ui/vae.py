"""What only a variational autoencoder has: each image's posterior q(z | image), a normal with
a mean and a standard deviation per coordinate, and the prior N(0, I) it was pulled towards,
from which new images can be drawn."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ae_core import explore, store

from . import images, state

PRIOR_SAMPLES = 16
PRIOR_SPAN = 2.0  # The grid page's "prior" span: ±2σ of N(0, I) in each coordinate.


def posterior(choice: state.Choice, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, sigma)`` of one image's posterior, each (2,)."""
    mean, log_var = state.model(choice).encode_posterior(image[np.newaxis])
    return mean[0], np.exp(log_var[0] / 2)


def with_ellipse(figure: go.Figure, mean: np.ndarray, sigma: np.ndarray) -> go.Figure:
    """A copy of the map with the posterior's mean and its 2σ ellipse (the axes are the
    coordinates': the posterior's covariance is diagonal)."""
    figure = go.Figure(figure)
    figure.add_shape(type="circle", name="posterior 2σ", x0=mean[0] - 2 * sigma[0], x1=mean[0] + 2 * sigma[0],
                     y0=mean[1] - 2 * sigma[1], y1=mean[1] + 2 * sigma[1],
                     line=dict(color="black", width=2), fillcolor="rgba(0, 0, 0, 0.08)")
    figure.add_shape(type="line", name="posterior mean", x0=mean[0] - 0.15, x1=mean[0] + 0.15, y0=mean[1],
                     y1=mean[1], line=dict(color="black", width=2))
    figure.add_shape(type="line", name="posterior mean", x0=mean[0], x1=mean[0], y0=mean[1] - 0.15,
                     y1=mean[1] + 0.15, line=dict(color="black", width=2))
    return figure


def prior_codes(draw: int) -> np.ndarray:
    """The ``draw``-th set of 16 codes z ~ N(0, I): seeded by the draw, so a draw is reproducible."""
    return np.random.default_rng(draw).standard_normal((PRIOR_SAMPLES, 2)).astype(np.float32)


@st.cache_resource(max_entries=16, show_spinner=False)
def prior_samples(choice: state.Choice, draw: int) -> tuple[np.ndarray, str]:
    """The draw's codes and their decoded images, 4 by 4, as a PNG asset's name."""
    codes = prior_codes(draw)
    picture = explore.tile(state.model(choice).decode(codes), columns=4)
    return codes, store.put_asset(images.to_png(images.enlarge(picture, 4)), "png")
