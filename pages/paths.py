"""Walk the straight line between two digits in the latent plane and watch one become the other."""

import numpy as np
import streamlit as st

from ae_core.explore import decode_path, enlarge, tile, to_png
from ui import state

st.title("Paths between digits")
st.caption("Pick two digits. The strip shows what the decoder draws at evenly spaced points of "
           "the straight line between their codes; the line is drawn on the map below. Click "
           "two points on the map first and they become the two ends.")
model = state.model_or_stop(2)
table, problem = state.test_table_or_none()
if table is None:
    st.error(problem)
    st.stop()
images, _ = state.test_set()

yours = st.session_state.get("your_digit")  # Left by the "Your digit" page.
sources = ["test image", "your digit"] if yours is not None else ["test image"]
# The last two digits clicked on the map, else the first and fourth test digits.
clicks = st.session_state.get("recent_clicks", [])
defaults = clicks[-2:] if len(clicks) >= 2 else [0, 3]


def endpoint(name: str, default_index: int) -> tuple[tuple[float, float], np.ndarray, str]:
    """One end of the path: its code, its image and a caption, from the user's choice."""
    st.markdown(f"**End {name}**")
    source = st.radio(f"End {name} is", sources, key=f"{name.lower()}_from", horizontal=True,
                      label_visibility="collapsed")
    if source == "your digit":
        return tuple(yours["z"]), yours["image"], "your digit"
    index = st.number_input(f"Test image for end {name}", min_value=0, max_value=len(table) - 1,
                            value=int(default_index), step=1, key=name.lower(), bind="query-params")
    row = table.iloc[int(index)]
    return ((float(row["z1"]), float(row["z2"])), images[int(index)],
            f"test image #{int(index)} · label {state.class_names()[int(row['label'])]}")


a_column, b_column, steps_column = st.columns(3, gap="medium")
with a_column:
    start, start_image, start_caption = endpoint("A", defaults[0])
with b_column:
    end, end_image, end_caption = endpoint("B", defaults[1])
with steps_column:
    steps = st.slider("Images along the path", min_value=3, max_value=20, value=10, key="steps",
                      bind="query-params")
if yours is None:
    st.caption("Upload or draw a digit on the *Your digit* page to use it as an end.")

strip, codes = decode_path(model, np.array(start), np.array(end), steps)
ends_column, strip_column = st.columns([1, 6], gap="small")
ends_column.image(enlarge(tile(np.stack([start_image, end_image]), columns=1), 3),
                  caption="A above B", output_format="PNG")
strip_column.image(enlarge(strip, 3), output_format="PNG",
                   caption=f"from {start_caption} at ({start[0]:.2f}, {start[1]:.2f}) to "
                           f"{end_caption} at ({end[0]:.2f}, {end[1]:.2f}), {steps} steps")
strip_column.download_button("Download the strip (PNG)", data=lambda: to_png(strip),
                             key="download_path", file_name="latent_path.png", mime="image/png",
                             on_click="ignore", icon=":material/download:")
st.plotly_chart(state.map_with_path(start, end), key="path_map", config={"displaylogo": False})
