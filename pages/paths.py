"""Walk the straight line between two images in the latent plane and watch one become the other."""

import numpy as np
import streamlit as st

from ae_core.explore import decode_path, tile
from ui import frame, links, live, state
from ui.images import enlarge, to_png


choice = frame.page("Paths")
st.caption(f"Pick two {choice.item(2)}. Drag along the line from A to B to watch the decoder morph one "
           f"into the other, or read the strip of evenly spaced steps; the line is drawn on the map "
           f"below. The last two {choice.item(2)} clicked on the map become the two ends.")
model, _, table = state.models_and_table_or_stop(choice)
images, _ = state.test_set(choice.dataset)

yours = st.session_state.get("your_digit")  # Left by the "Your image" page.
sources = ["test image", "your drawing"] if yours is not None else ["test image"]

# The ends live in the session, so that they survive a visit to another page, and are
# written into the link by hand: they also come from clicks on the map, which an input
# bound to the URL would not carry into it. A link's ends (checked by ui.links) come first,
# then the last two images clicked on the map whenever those change.
ends = st.session_state.setdefault("path_ends", {name: int(st.query_params.get(name, spec.default))
                                                 for name, spec in links.PATH_ENDS.items()})
clicks = st.session_state.get("recent_clicks", [])
if len(clicks) >= 2 and st.session_state.get("path_clicks") != clicks:
    st.session_state["path_clicks"] = clicks
    ends["a"], ends["b"] = clicks[-2:]
for name in ("a", "b"):
    st.session_state[f"end_{name}"] = ends[name]  # The inputs show the session's ends.


def endpoint(name: str) -> tuple[tuple[float, float], np.ndarray, str]:
    """One end of the path: its code, its image and a caption, from the user's choice."""
    st.markdown(f"**End {name}**")
    # A choice only when there is one: without a drawing, each end is a test image.
    source = (st.radio(f"End {name} is", sources, key=f"{name.lower()}_from", horizontal=True,
                       label_visibility="collapsed") if len(sources) > 1 else sources[0])
    if source == "your drawing":
        return tuple(yours["z"]), yours["image"], "your drawing"
    key = f"end_{name.lower()}"
    spec = links.PATH_ENDS[name.lower()]
    index = st.number_input(f"Test image for end {name} (0 to {len(table) - 1})", min_value=spec.low,
                            max_value=spec.high, step=1, key=key,
                            on_change=lambda: ends.update({name.lower(): st.session_state[key]}))
    st.query_params[name.lower()] = str(int(index))
    row = table.iloc[int(index)]
    return ((float(row["z1"]), float(row["z2"])), images[int(index)],
            f"test image #{int(index)} · {choice.class_names[int(row['label'])]}")


a_column, b_column, steps_column = st.columns(3, gap="medium")
with a_column:
    start, start_image, start_caption = endpoint("A")
with b_column:
    end, end_image, end_caption = endpoint("B")
with steps_column:
    steps = links.PATH_STEPS.draw(st, "Images along the path")
if yours is None:
    st.caption("Draw or upload an image on the *Your image* page to use it as an end.")

live.scrubber(choice, start, end)  # Without a working decoder the strip below still shows the path.
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
live.map_points(choice, "path_map")  # The figure below comes without its points; the browser adds them.
st.plotly_chart(state.map_with_path(choice, start, end), key="path_map",
                config={"displaylogo": False, "scrollZoom": True})
