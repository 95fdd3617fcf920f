"""The 10,000 test digits as points of the 2-D latent; click or select to see them decoded."""

import numpy as np
import streamlit as st

from ae_core.explore import enlarge, tile
from ui import state
from ui.selection import parse_selection

GALLERY_CAP = 60
WORST_COUNT = 20

st.title("Latent map")
st.caption("Each dot is one test image, placed at the code (z1, z2) the encoder gives it. "
           "Click a dot to decode it; drag a box or lasso to see many. The dashed square is the "
           "[-5, 5]² window of the decoded grid.")

# The models first: the table below is encoded by the 2-D model.
model = state.model_or_stop(2)
model_10d = state.model_or_stop(10)
table, problem = state.test_table_or_none()
if table is None:
    st.error(problem)
    st.stop()

# Every choice is bound to the URL, so a copied link reopens this exact view.
colour_column, background_column, density_column, opacity_column = st.columns([3, 3, 2, 2])
# The options are written as they appear in the URL (?colour=error&background=digits).
colour_by = colour_column.radio(
    "Colour the points by", ["label", "error"], key="colour", horizontal=True, bind="query-params",
    captions=["the digit's class", "how badly it is reconstructed"])
background = background_column.radio(
    "Under the points", ["none", "digits", "drift"], key="background", horizontal=True,
    bind="query-params", captions=["", "the decoded plane", "‖z − E(D(z))‖"],
    help="digits: what the decoder draws at each place of the plane. drift: how far decoding "
         "then re-encoding moves a point; dark where the decoder draws images the encoder "
         "would never produce.")
density = density_column.slider("Background density", 5, 40, 20, key="density",
                                bind="query-params", disabled=background == "none",
                                help="Digits per side of the decoded background")
opacity = opacity_column.slider("Background opacity", 0.1, 1.0, 0.5, 0.05, key="opacity",
                                bind="query-params", disabled=background == "none")


def follow_click() -> None:
    """Keep the URL's ``index`` and the recent clicks in step with the chart's selection."""
    selection = parse_selection(st.session_state["map_chart"])
    if selection.kind == "point":
        st.session_state["index"] = selection.indices[0]
        # The path page offers the last two clicked digits as its ends.
        st.session_state["recent_clicks"] = [*st.session_state.get("recent_clicks", [])[-1:],
                                             selection.indices[0]]
    else:
        st.session_state["index"] = None


def digit_panel(index: int, images: np.ndarray) -> None:
    row = table.iloc[index]
    z = (float(row["z1"]), float(row["z2"]))
    st.subheader(f"Test image #{index} · label {state.class_names()[int(row['label'])]}")
    original, reconstruction, decoded = st.columns(3)
    original.image(enlarge(images[index], 5), caption="the test digit", output_format="PNG")
    reconstruction.image(enlarge(model_10d.reconstruct(images[index:index + 1])[0], 5),
                         caption="10-D reconstruction", output_format="PNG")
    decoded.image(enlarge(model.decode(np.array([z]))[0], 5),
                  caption=f"decoded at ({z[0]:.2f}, {z[1]:.2f})", output_format="PNG")
    st.caption("With a 2-D code, the 2-D reconstruction *is* the image decoded at the "
               "clicked point; the 10-D model, which keeps five times more, is shown for "
               "comparison.")


@st.fragment
def explorer() -> None:
    chart_column, panel = st.columns([3, 2], gap="medium")
    with panel:
        index = st.number_input("Test image", min_value=0, max_value=len(table) - 1, value=None,
                                step=1, key="index", bind="query-params",
                                placeholder="click a point, or type 0 to 9999")
    event = st.session_state.get("map_chart")
    selection = parse_selection(event)
    figure = state.map_figure(colour_by, background, density, opacity)
    if index is not None and selection.indices[:1] != [index]:
        # Chosen by a link or typed, not clicked: ring it, since Plotly did not highlight it.
        figure = state.map_figure_with_ring(colour_by, background, density, opacity, index)
    with chart_column:
        st.plotly_chart(figure, key="map_chart", on_select=follow_click,
                        selection_mode=("points", "box", "lasso"), config={"displaylogo": False})
    images, _ = state.test_set()
    with panel:
        if selection.kind in ("box", "lasso"):
            chosen = selection.indices
            st.subheader(f"{len(chosen)} digits selected ({selection.kind})")
            counts = table.iloc[chosen]["label"].value_counts().sort_index()
            st.bar_chart(counts, height=160, x_label="label", y_label="count")
            shown = chosen[:GALLERY_CAP]
            st.image(enlarge(tile(images[shown], columns=10), 2),
                     caption=f"the first {len(shown)} of {len(chosen)}" if len(chosen) > len(shown) else None,
                     output_format="PNG")
        elif index is not None:
            digit_panel(int(index), images)
        else:
            st.info("Click a point, or drag a box or lasso over the map.")


explorer()

if colour_by == "error":
    st.subheader(f"The {WORST_COUNT} worst-reconstructed test images")
    st.caption("Top: the test image; bottom: its 2-D reconstruction. Odd shapes, and now and "
               "then an image whose label looks wrong, gather here.")
    worst = state.worst_images(WORST_COUNT)
    for row in range(0, len(worst), 10):  # One st.columns per row keeps reading order.
        for column, digit in zip(st.columns(10), worst[row:row + 10]):
            column.image(enlarge(digit.pair, 3), output_format="PNG",
                         caption=f"#{digit.index} · label {state.class_names()[digit.label]} · {digit.error:.3f}")

st.download_button("Download the latents (CSV)", data=state.latents_csv_maker(), key="download_latents",
                   file_name=f"{state.current().dataset}_test_latents.csv", mime="text/csv", on_click="ignore",
                   icon=":material/download:",
                   help="index, label, z1, z2 and reconstruction_error of all 10,000 test images")
