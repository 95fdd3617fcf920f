"""Plotly figures and colours shared by the pages. Built once and cached by ``ui.state``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ae_core.explore import WINDOW

# Plotly's default qualitative palette: ten well-separated colours, one per class.
PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A",
           "#19D3F3", "#FF6692", "#B6E880", "#FF97FF", "#FECB52")


def palette_rgb() -> np.ndarray:
    """PALETTE as a (10, 3) uint8 array, for ``ae_core.explore.scatter_raster``."""
    return np.array([[int(color[i:i + 2], 16) for i in (1, 3, 5)] for color in PALETTE], dtype=np.uint8)


def latent_map(table: pd.DataFrame, class_names: tuple[str, ...], height: int = 620) -> go.Figure:
    """WebGL scatter of the test latents, one trace per class so the legend toggles classes.

    Each point's ``customdata`` is its test index, which the selection parser reads.
    """
    figure = go.Figure()
    for label, name in enumerate(class_names):
        rows = table[table["label"] == label]
        figure.add_trace(go.Scattergl(
            x=rows["z1"], y=rows["z2"], mode="markers", name=name,
            customdata=rows["index"].to_numpy(),
            marker=dict(size=4, color=PALETTE[label], opacity=0.75),
            hovertemplate=f"label {name}<br>test index %{{customdata}}<br>"
                          "z = (%{x:.2f}, %{y:.2f})<extra></extra>"))
    low, high = WINDOW
    # A layout shape, not a trace: the outline cannot be clicked or selected.
    figure.add_shape(type="rect", x0=low, y0=low, x1=high, y1=high,
                     line=dict(color="#444", width=1.5, dash="dash"))
    figure.update_layout(
        height=height, margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(title="label (click to hide)", itemsizing="constant"),
        xaxis=dict(title="z1", range=[low - 0.5, high + 0.5], zeroline=False),
        yaxis=dict(title="z2", range=[low - 0.5, high + 0.5], zeroline=False,
                   scaleanchor="x", scaleratio=1),
        uirevision="latent-map")
    return figure


def grid_figure(image: np.ndarray, z1_values: np.ndarray, z2_values: np.ndarray) -> go.Figure:
    """The decoded grid as one image, with z values on the axes at each cell's centre."""
    size = len(z1_values)
    cell = image.shape[0] // size
    centres = [cell * i + (cell - 1) / 2 for i in range(size)]
    figure = go.Figure(go.Heatmap(z=image, colorscale="gray", showscale=False, hoverinfo="skip"))
    figure.update_layout(
        height=680, margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(title="z1", tickvals=centres, ticktext=[f"{v:.2f}" for v in z1_values],
                   showgrid=False, constrain="domain"),
        yaxis=dict(title="z2", tickvals=centres, ticktext=[f"{v:.2f}" for v in z2_values],
                   autorange="reversed", showgrid=False, scaleanchor="x", constrain="domain"))
    return figure
