"""Plotly figures and colours shared by the pages. Built once and cached by ``ui.state``."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ae_core.config import WINDOW
from ae_core.runs import epoch_mse

# Plotly's default qualitative palette: ten well-separated colours, one per class.
PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A",
           "#19D3F3", "#FF6692", "#B6E880", "#FF97FF", "#FECB52")


def palette_rgb() -> np.ndarray:
    """PALETTE as a (10, 3) uint8 array, for ``ui.images.scatter_raster``."""
    return np.array([[int(color[i:i + 2], 16) for i in (1, 3, 5)] for color in PALETTE], dtype=np.uint8)


def latent_map(class_names: tuple[str, ...], colour_by: str = "label", errors: np.ndarray | None = None,
               height: int = 460, half_width: float = WINDOW[1]) -> go.Figure:
    """WebGL scatter of the test latents, with its point traces left empty.

    The browser fills them from the points asset (``ui/live/map_points.js``): each point
    trace's ``meta`` says which points it takes (``{"points": label}``, or ``"all"``), and
    each point's ``customdata`` is its test index. Until then each holds one point at (null,
    null), which plotly does not draw but which keeps the trace visible: its legend entry and
    colour bar take their room from the start, so the plot area does not move when the points
    come. ``colour_by="label"`` draws one trace per
    class, so the legend toggles classes; ``colour_by="error"`` one trace coloured by each
    image's reconstruction error, whose scale ``errors`` (all the test set's) sets.
    """
    if colour_by not in ("label", "error"):
        raise ValueError(f"colour_by must be 'label' or 'error', not {colour_by!r}.")
    figure = go.Figure()
    empty = dict(x=[None], y=[None], customdata=[None], mode="markers")
    if colour_by == "label":
        for label, name in enumerate(class_names):
            figure.add_trace(go.Scattergl(
                **empty, name=name, meta={"points": label},
                marker=dict(size=4, color=PALETTE[label], opacity=0.75),
                hovertemplate=f"label {name}<br>test index %{{customdata}}<br>"
                              "z = (%{x:.2f}, %{y:.2f})<extra></extra>"))
    else:
        # The top 1% would otherwise stretch the scale and grey out the rest; the bar says so.
        cap = float(np.percentile(errors, 99))
        figure.add_trace(go.Scattergl(
            **empty, name="test images", meta={"points": "all"},
            marker=dict(size=4, color=[0.0], colorscale="Plasma", opacity=0.8, cmin=0.0, cmax=cap,
                        colorbar=dict(title=f"reconstruction<br>error (MSE),<br>capped at {cap:.3f}<br>"
                                            f"(worst {errors.max():.3f})", thickness=14)),
            hovertemplate="%{text}<br>test index %{customdata}<br>"
                          "z = (%{x:.2f}, %{y:.2f})<extra></extra>"))
    low, high = WINDOW
    # The window and every code in view: a UMAP-loss model's codes reach well beyond it.
    extent = max(high, half_width) + 0.5
    # A layout shape, not a trace: the outline cannot be clicked or selected.
    figure.add_shape(type="rect", x0=low, y0=low, x1=high, y1=high,
                     line=dict(color="#444", width=1.5, dash="dash"))
    figure.update_layout(
        height=height, margin=dict(l=10, r=10, t=30, b=10), showlegend=colour_by == "label",
        # Above the plot, not beside it: on a phone a legend at the side left a third of the width.
        legend=dict(title="label (click to hide)", itemsizing="constant", orientation="h",
                    x=0, y=1.0, xanchor="left", yanchor="bottom"),
        # Equal units on both axes, by shrinking the plot to a square rather than stretching a
        # range beyond the data: a phone's narrow chart showed z2 from -15 to 15 around it. The
        # height keeps the whole plot in view at 1280x720 as the page opens (a resize from the
        # browser would be undone by Streamlit's next draw of the figure).
        xaxis=dict(title="z1", range=[-extent, extent], zeroline=False, constrain="domain"),
        yaxis=dict(title="z2", range=[-extent, extent], zeroline=False,
                   scaleanchor="x", scaleratio=1, constrain="domain"),
        uirevision="latent-map")
    return figure


def _cell_extent(values: np.ndarray) -> tuple[float, float]:
    """The outer edges of cells centred on evenly spaced ``values`` (ascending or not)."""
    low, high = float(np.min(values)), float(np.max(values))
    half = (high - low) / (len(values) - 1) / 2 if len(values) > 1 else 0.5
    return low - half, high + half


def add_manifold(figure: go.Figure, source: str, z1_values: np.ndarray,
                 z2_values: np.ndarray, opacity: float) -> None:
    """Lay the decoded grid (from ``explore.decode_grid``, as the picture at URL ``source``)
    under the points, each digit at its own (z1, z2). The picture's ink is dark on light, so
    that the coloured points stay legible."""
    left, right = _cell_extent(z1_values)
    bottom, top = _cell_extent(z2_values)
    figure.add_layout_image(
        source=source,
        xref="x", yref="y", x=left, y=top, sizex=right - left, sizey=top - bottom,
        sizing="stretch", opacity=opacity, layer="below")


def add_drift(figure: go.Figure, source: str, largest: float, z1_values: np.ndarray,
              z2_values: np.ndarray, opacity: float) -> None:
    """Colour the plane under the points by ‖z − E(D(z))‖ (from ``explore.reencoding_drift``).

    The values are the asset at URL ``source``: float32, little-endian, one row per z2 value
    in ``z2_values``' order. The browser puts them into the heatmap (``ui/live/map_points.js``,
    which finds it by its ``meta.field``), so the figure on the websocket holds one undrawn
    cell whatever the density. The colour scale's ends are set here, so that the colour bar
    has its room and its numbers before the values come.
    """
    heatmap = go.Heatmap(
        z=[[None]], x=z1_values, y=z2_values, meta={"field": source},
        colorscale="Greys", opacity=opacity, zmin=0.0, zmax=largest,
        # Beside the plot, on the right: the legend is above it and the z1 axis below.
        colorbar=dict(title=dict(text="‖z − E(D(z))‖", side="right"), thickness=10, len=0.6),
        hovertemplate="z = (%{x:.2f}, %{y:.2f})<br>moves by %{z:.2f}<extra></extra>")
    figure.add_trace(heatmap)
    # Moved first in the data, so that it is drawn under the points.
    figure.data = (figure.data[-1], *figure.data[:-1])


# The markers are WebGL traces added after the points: plotly draws all WebGL traces on one
# canvas above its SVG layer, in trace order, so an SVG marker would sit under the points.
# Each is drawn twice, white and wide under black and narrow, to show on any background.
_HALO = (("white", 5, 3), ("black", 2.5, 0))  # (colour, line width, extra marker size)


def add_segment(figure: go.Figure, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Draw the straight path between two codes, with its ends marked A and B, above the points."""
    for colour, width, extra in _HALO:
        figure.add_trace(go.Scattergl(
            x=[start[0], end[0]], y=[start[1], end[1]], mode="lines+markers", name="path",
            line=dict(color=colour, width=width), marker=dict(size=12 + extra, color=colour),
            hoverinfo="skip", showlegend=False))
    figure.add_trace(go.Scattergl(
        x=[start[0], end[0]], y=[start[1], end[1]], mode="text", name="path ends", text=["A", "B"],
        textposition="top center", textfont=dict(size=18, color="black"), hoverinfo="skip",
        showlegend=False))


def add_ring(figure: go.Figure, point: tuple[float, float]) -> None:
    """Circle one code, above the points: the test image chosen by a link, a click or a number."""
    for colour, width, extra in _HALO:
        figure.add_trace(go.Scattergl(
            x=[point[0]], y=[point[1]], mode="markers", name="chosen", hoverinfo="skip",
            # WebGL draws an open symbol's outline in the marker's own colour.
            marker=dict(size=20 + extra, color=colour, symbol="circle-open", line=dict(color=colour, width=width)),
            showlegend=False))


def grid_figure(source: str, side: int, z1_values: np.ndarray, z2_values: np.ndarray) -> go.Figure:
    """The decoded grid, the ``side``-pixel square picture at URL ``source``, with z values on
    the axes at each cell's centre.

    The picture is a layout image, not a heatmap of its pixels, so the figure stays a few
    kB whatever the grid's size. A transparent heatmap of one value per cell keeps the axes
    on the cells and gives plotly a trace to draw.
    """
    size = len(z1_values)
    cell = side // size
    centres = [cell * i + (cell - 1) / 2 for i in range(size)]
    figure = go.Figure(go.Heatmap(z=np.zeros((size, size), dtype=np.uint8), x=centres, y=centres, opacity=0,
                                  showscale=False, hoverinfo="skip"))
    figure.add_layout_image(source=source, xref="x", yref="y", x=-0.5, y=-0.5, sizex=side, sizey=side,
                            sizing="stretch", layer="below")
    figure.update_layout(
        height=680, margin=dict(l=10, r=10, t=10, b=10),
        # No grid or zero lines: the picture lies beneath them, and the data's 0 is its edge.
        xaxis=dict(title="z1", tickvals=centres, ticktext=[f"{v:.2f}" for v in z1_values],
                   showgrid=False, zeroline=False, constrain="domain"),
        yaxis=dict(title="z2", tickvals=centres, ticktext=[f"{v:.2f}" for v in z2_values],
                   autorange="reversed", showgrid=False, zeroline=False, scaleanchor="x", constrain="domain"))
    return figure


def formation_figure(codes: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...],
                     val_loss: np.ndarray, height: int = 560) -> go.Figure:
    """The recorded sample's codes epoch by epoch, as a Plotly animation with its own slider.

    Every frame lives in the browser, so playing or dragging through the epochs costs no
    round trip to the server.
    """
    def traces(epoch: int) -> list[go.Scatter]:
        return [go.Scatter(x=codes[epoch, labels == label, 0], y=codes[epoch, labels == label, 1],
                           mode="markers", name=name, marker=dict(size=5, color=PALETTE[label]))
                for label, name in enumerate(class_names)]

    epochs = len(codes)
    low, high = WINDOW
    figure = go.Figure(
        data=traces(0),
        frames=[go.Frame(data=traces(epoch), name=str(epoch + 1)) for epoch in range(epochs)])
    figure.update_layout(
        height=height, margin=dict(l=10, r=10, t=40, b=10),
        xaxis=dict(title="z1", range=[low - 0.5, high + 0.5], constrain="domain"),
        yaxis=dict(title="z2", range=[low - 0.5, high + 0.5], scaleanchor="x", scaleratio=1,
                   constrain="domain"),
        updatemenus=[dict(type="buttons", showactive=False, x=0.0, y=-0.12, xanchor="right",
                          yanchor="top", direction="left",
                          buttons=[dict(label="▶ play", method="animate",
                                        args=[None, dict(frame=dict(duration=600, redraw=False),
                                                         fromcurrent=True, transition=dict(duration=300))])])],
        sliders=[dict(active=0, currentvalue=dict(prefix="after epoch "), pad=dict(t=30),
                      steps=[dict(label=f"{epoch + 1}", method="animate",
                                  args=[[str(epoch + 1)], dict(mode="immediate", frame=dict(duration=0, redraw=False),
                                                                transition=dict(duration=0))])
                             for epoch in range(epochs)])],
        title=dict(text=f"{len(labels)} test images, epochs 1 to {epochs} "
                        f"(val MSE {val_loss[0]:.4f} → {val_loss[-1]:.4f})", font=dict(size=14)))
    return figure


def loss_curves(history: list[dict], height: int = 260) -> go.Figure:
    """Training and validation MSE by epoch (``history``'s rows, epochs counted from 1), with
    markers so that one epoch is visible too. Every kind's MSE, not its loss: a VAE's loss is
    in the hundreds (summed cross-entropy and KL) where the page speaks of its MSE."""
    epochs = [row["epoch"] for row in history]
    training, validation = zip(*(epoch_mse(row) for row in history))
    figure = go.Figure([
        go.Scatter(x=epochs, y=training, mode="lines+markers", name="training"),
        go.Scatter(x=epochs, y=validation, mode="lines+markers", name="validation (test split)")])
    figure.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10),
                         # Whole epochs only, and none before the first or after the last.
                         xaxis=dict(title="epoch", range=[min(epochs) - 0.5, max(epochs) + 0.5],
                                    dtick=1 if len(epochs) <= 20 else None, tickformat="d"),
                         yaxis=dict(title="MSE"),
                         legend=dict(orientation="h", y=1.0, yanchor="bottom"))
    return figure
