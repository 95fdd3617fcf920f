"""Walk the latent plane with two sliders; the decoder draws each point on demand."""

import numpy as np
import streamlit as st

from ae_core.explore import enlarge, mark
from ui import state

st.title("Sliders")
st.caption("Choose a code (z1, z2) and see what the decoder draws there. The small map shows "
           "where that point lies among the test digits.")
model = state.model_or_stop(2)
table, problem = state.test_table_or_none()


@st.fragment
def explorer() -> None:
    controls, digit, where = st.columns([2, 2, 2], gap="medium")
    with controls:
        # Bound to the URL: /sliders?z1=1.5&z2=-2 opens that point, and moving follows it.
        z1 = st.slider("z1", min_value=-5.0, max_value=5.0, value=0.0, step=0.1, key="z1",
                       bind="query-params")
        z2 = st.slider("z2", min_value=-5.0, max_value=5.0, value=0.0, step=0.1, key="z2",
                       bind="query-params")
    with digit:
        st.image(enlarge(model.decode(np.array([[z1, z2]]))[0], 10),
                 caption=f"decoded at ({z1:.1f}, {z2:.1f})", output_format="PNG")
    with where:
        if table is None:
            st.warning(f"The map needs the MNIST test set. {problem}")
        else:
            st.image(mark(state.map_raster(), (z1, z2)), width=280,
                     caption="the point among the test digits (colours as on the map)", output_format="PNG")


explorer()
