"""Upload a photo of your own handwritten digit and see what the model makes of it."""

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

import ae_core
from ae_core.digits import UPLOAD_EXTENSIONS
from ae_core.explore import nearest, tile
from ui import frame, state
from ui.images import enlarge, mark, pad_to_square

frame.require()

st.title("Your digit")
st.caption("Draw a digit in the box, or upload a photo or scan of one handwritten digit (dark on "
           "light or light on dark, any size, PNG, JPEG, GIF, BMP or WebP). Either is prepared the "
           "way MNIST was made, then encoded and decoded.")
choice = state.current()
model_2d, model_10d = state.models_or_stop(choice)
if choice.dataset != "mnist":
    st.warning(f"The model in use was trained on {state.DATASETS[choice.dataset]}, not on "
               "digits. Your drawing will be read as the nearest thing it knows: expect a blurred "
               "garment, not your digit. Choose MNIST in the sidebar to see a digit come back.")


def use(source: str) -> None:
    st.session_state["digit_source"] = source  # Whichever the user touched last is shown.


draw_column, upload_column = st.columns(2, gap="large")
with draw_column:
    drawing = st_canvas(stroke_width=22, stroke_color="#000000", background_color="#FFFFFF",
                        height=280, width=280, drawing_mode="freedraw", key="canvas",
                        return_image_data=True, on_change=lambda: use("canvas"))
    st.caption("Draw with the mouse or a finger; the bin icon under the box clears it.")
with upload_column:
    upload = st.file_uploader("…or upload a picture", type=list(UPLOAD_EXTENSIONS), key="digit_upload",
                              on_change=lambda: use("upload"))

has_strokes = bool(drawing.json_data and drawing.json_data.get("objects"))
source = st.session_state.get("digit_source", "canvas")
if source == "upload" and upload is None:
    source = "canvas"  # The upload was removed: fall back to the drawing, if any.
if source == "canvas" and not has_strokes:
    st.info("Draw a digit in the box, or upload an image file.")
    st.stop()
try:
    steps = ae_core.prepare_digit(drawing.image_bytes if source == "canvas" else upload.getvalue())
except ValueError as error:
    st.error(str(error))
    st.stop()

st.subheader("1 · Preparation, as for MNIST")
columns = st.columns(5)
columns[0].image(enlarge(pad_to_square(steps.grey), 1), width=112, caption="greyscale", output_format="PNG")
columns[1].image(enlarge(pad_to_square(steps.ink), 1), width=112,
                 caption="ink made bright" + (" (inverted)" if steps.inverted else ""), output_format="PNG")
columns[2].image(enlarge(pad_to_square(steps.cropped), 1), width=112, caption="cropped to the ink", output_format="PNG")
columns[3].image(enlarge(pad_to_square(steps.fitted), 5), width=112, caption="fitted into 20×20", output_format="PNG")
columns[4].image(enlarge(steps.mnist, 4), width=112, caption="centred by mass in 28×28", output_format="PNG")

code_2d = model_2d.encode(steps.mnist[np.newaxis])[0]
code_10d = model_10d.encode(steps.mnist[np.newaxis])[0]
# The path page can start or end at this digit.
st.session_state["your_digit"] = {"z": (float(code_2d[0]), float(code_2d[1])), "image": steps.mnist}
st.subheader("2 · What the models make of it")
columns = st.columns([1, 1, 1, 2])
columns[0].image(enlarge(steps.mnist, 5), caption="your digit, prepared", output_format="PNG")
columns[1].image(enlarge(model_2d.decode(code_2d)[0], 5), caption="2-D reconstruction", output_format="PNG")
columns[2].image(enlarge(model_10d.decode(code_10d)[0], 5), caption="10-D reconstruction", output_format="PNG")
table, problem = state.test_table_or_none(choice)
if table is None:
    columns[3].warning(f"The map and the neighbours need the MNIST test set. {problem}")
    st.stop()
columns[3].image(mark(state.map_raster(choice), (float(code_2d[0]), float(code_2d[1]))), width=260,
                 caption=f"where it lands: z = ({code_2d[0]:.2f}, {code_2d[1]:.2f})", output_format="PNG")

st.subheader("3 · Its five nearest test digits")
images, labels = state.test_set(choice.dataset)
neighbours = nearest(code_10d, state.test_latents(choice, 10), count=5)
st.image(enlarge(tile(images[neighbours], columns=5), 4),
         caption="labels " + ", ".join(str(int(labels[i])) for i in neighbours)
         + " · nearest in the 10-D latent, which keeps a digit among its own kind far more "
           "often than the 2-D map can", output_format="PNG")
