"""Walk the latent plane with a pad or two sliders; the decoder draws each point."""

import numpy as np
import streamlit as st

from ui import frame, links, live, state
from ui.images import enlarge, mark


choice = frame.page("Sliders")
st.caption("Drag the handle over the small map, or use the arrow keys on it: the decoder draws the "
           "point under the handle as you move, right here in your browser. Let go and the sliders "
           "and the link take the point. The sliders set it precisely.")
model, _ = state.models_or_stop(choice)
table, problem = state.test_table_or_none(choice)


def take_pad_point() -> None:
    """The pad was let go: its point becomes the sliders' values, and so the link's."""
    released = st.session_state["live_pad"]["release"]
    st.session_state["z1"], st.session_state["z2"] = (round(float(value), 2) for value in released)


@st.fragment
def explorer() -> None:
    controls, pad_column = st.columns([1, 3], gap="large")
    with controls:
        # Bound to the URL: /sliders?z1=1.5&z2=-2 opens that point, and moving follows it.
        z1 = links.Z1.draw(st, "z1")
        z2 = links.Z2.draw(st, "z2")
        if table is None:
            st.warning(f"The map under the pad needs the test set. {problem}")
    with pad_column:
        result = live.pad(choice, (z1, z2), on_release=take_pad_point)
        if result.failed:
            # This browser cannot decode: the server draws the sliders' point instead.
            digit, where = st.columns(2)
            digit.image(enlarge(model.decode(np.array([[z1, z2]]))[0], 10),
                        caption=f"decoded at ({z1:.2f}, {z2:.2f})", output_format="PNG")
            if table is not None:
                where.image(mark(state.map_raster(choice), (z1, z2)), width=280, output_format="PNG",
                            caption="the point among the test images (colours as on the map)")


explorer()
