"""The 10,000 test digits as points of the 2-D latent; click or select to see them decoded."""

import numpy as np
import streamlit as st

from ae_core.explore import enlarge, tile
from ui import state
from ui.selection import parse_selection

GALLERY_CAP = 60

st.title("Latent map")
st.caption("Each dot is one MNIST test digit, placed at the code (z1, z2) the encoder gives it. "
           "Click a dot to decode it; drag a box or lasso to see many. The dashed square is the "
           "[-5, 5]² window of the decoded grid.")

# The models first: the table below is encoded by the 2-D model.
model = state.model_or_stop(2)
model_10d = state.model_or_stop(10)
table, problem = state.test_table_or_none()
if table is None:
    st.error(problem)
    st.stop()


@st.fragment
def explorer() -> None:
    chart_column, panel = st.columns([3, 2], gap="medium")
    with chart_column:
        event = st.plotly_chart(state.map_figure(), key="map_chart", on_select="rerun",
                                selection_mode=("points", "box", "lasso"),
                                config={"displaylogo": False})
    selection = parse_selection(event)
    images, _ = state.test_set()
    with panel:
        if not selection.indices:
            st.info("Click a point, or drag a box or lasso over the map.")
        elif selection.kind == "point":
            index = selection.indices[0]
            row = table.iloc[index]
            z = (float(row["z1"]), float(row["z2"])) if selection.point is None else selection.point
            st.subheader(f"Test digit #{index} · label {int(row['label'])}")
            original, reconstruction, decoded = st.columns(3)
            original.image(enlarge(images[index], 5), caption="the test digit", output_format="PNG")
            reconstruction.image(enlarge(model_10d.reconstruct(images[index:index + 1])[0], 5),
                                 caption="10-D reconstruction", output_format="PNG")
            decoded.image(enlarge(model.decode(np.array([z]))[0], 5),
                          caption=f"decoded at ({z[0]:.2f}, {z[1]:.2f})", output_format="PNG")
            st.caption("With a 2-D code, the 2-D reconstruction *is* the image decoded at the "
                       "clicked point; the 10-D model, which keeps five times more, is shown for "
                       "comparison.")
        else:
            chosen = selection.indices
            st.subheader(f"{len(chosen)} digits selected ({selection.kind})")
            counts = table.iloc[chosen]["label"].value_counts().sort_index()
            st.bar_chart(counts, height=160, x_label="label", y_label="count")
            shown = chosen[:GALLERY_CAP]
            st.image(enlarge(tile(images[shown], columns=10), 2),
                     caption=f"the first {len(shown)} of {len(chosen)}" if len(chosen) > len(shown) else None, output_format="PNG")


explorer()
