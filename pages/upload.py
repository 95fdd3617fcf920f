"""Draw or upload your own digit (or any image) and see what the model makes of it."""

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from ae_core import datasets
from ae_core.safe_images import UPLOAD_EXTENSIONS
from ae_core.explore import nearest, tile
from ui import frame, state, uploads
from ui.images import enlarge, mark, pad_to_square, preview


choice = frame.page("Your image")
sketch = datasets.BY_NAME[choice.dataset].sketch
st.caption(f"Draw {sketch} in the box, or upload a photo or scan of {sketch} (dark on light or light "
           f"on dark; PNG, JPEG, GIF, BMP or WebP, {uploads.LIMIT_TEXT}). Either is prepared the way "
           "MNIST's images were made (cropped to its ink, fitted into 20x20, centred), then encoded and decoded.")
model_2d, model_10d = state.models_or_stop(choice)
if choice.dataset != "mnist":
    st.warning(f"The model in use was trained on {state.DATASETS[choice.dataset]}, whose images were "
               "made another way: expect a blurred likeness of the nearest thing it knows.")


def use(source: str) -> None:
    st.session_state["digit_source"] = source  # Whichever the user touched last is shown.


draw_column, upload_column = st.columns(2, gap="large")
with draw_column:
    # The canvas's toolbar (undo, redo, clear) floats just above it while the pointer is over
    # it: this room keeps it off the text above.
    st.space(44)
    drawing = st_canvas(stroke_width=22, stroke_color="#000000", background_color="#FFFFFF",
                        height=280, width=280, drawing_mode="freedraw", key="canvas",
                        return_image_data=True, on_change=lambda: use("canvas"))
    st.caption("Draw with the mouse or a finger. Over the box, the icons just above it undo a "
               "stroke or clear it (the bin).")
with upload_column:
    upload = st.file_uploader(
        f"…or upload a picture, {uploads.LIMIT_TEXT}", type=list(UPLOAD_EXTENSIONS), key="digit_upload",
        max_upload_size=uploads.MAX_UPLOAD_MB, on_change=lambda: use("upload"), help=uploads.LIMIT_HELP)

has_strokes = bool(drawing.json_data and drawing.json_data.get("objects"))
source = st.session_state.get("digit_source", "canvas")
if source == "upload" and upload is None:
    source = "canvas"  # The upload was removed: fall back to the drawing, if any.
if source == "canvas" and not has_strokes:
    st.info(f"Draw {sketch} in the box, or upload an image file.")
    st.stop()
try:
    steps = uploads.prepare_digit(drawing.image_bytes if source == "canvas" else upload.getvalue())
except ValueError as error:
    st.error(str(error))
    st.stop()

if source == "canvas":
    st.header("Results for your drawing", divider="gray")
else:
    st.header(f"Results for your upload ({uploads.display_name(upload.name)})", divider="gray")
pictures = {"greyscale": preview(steps.grey),
            "ink made bright" + (" (inverted)" if steps.inverted else ""): preview(steps.ink),
            "cropped to the ink": preview(steps.cropped),
            "fitted into 20×20": enlarge(pad_to_square(steps.fitted), 5),
            "centred by mass in 28×28": enlarge(steps.mnist, 4)}
prepared = steps.mnist
del steps  # Its full-size steps (up to 1024 x 1024 floats each) are not kept while the page runs.
st.subheader("1 · Preparation, as for MNIST")
for column, (caption, picture) in zip(st.columns(5), pictures.items()):
    column.image(picture, width=112, caption=caption, output_format="PNG")

code_2d = model_2d.encode(prepared[np.newaxis])[0]
code_10d = model_10d.encode(prepared[np.newaxis])[0]
# The path page can start or end at this digit.
st.session_state["your_digit"] = {"z": (float(code_2d[0]), float(code_2d[1])), "image": prepared}
st.subheader("2 · What the models make of it")
columns = st.columns([1, 1, 1, 2])
columns[0].image(enlarge(prepared, 5), caption=f"your {choice.item()}, prepared", output_format="PNG")
columns[1].image(enlarge(model_2d.decode(code_2d)[0], 5), caption="2-D reconstruction", output_format="PNG")
columns[2].image(enlarge(model_10d.decode(code_10d)[0], 5), caption="10-D reconstruction", output_format="PNG")
table, problem = state.test_table_or_none(choice)
if table is None:
    columns[3].warning(f"The map and the neighbours need the {state.DATASETS[choice.dataset]} test set. {problem}")
    st.stop()
columns[3].image(mark(state.map_raster(choice), (float(code_2d[0]), float(code_2d[1]))), width=260,
                 caption=f"where it lands: z = ({code_2d[0]:.2f}, {code_2d[1]:.2f})", output_format="PNG")

st.subheader(f"3 · Its five nearest test {choice.item(5)}")
images, labels = state.test_set(choice.dataset)
neighbours = nearest(code_10d, state.test_latents(choice, 10), count=5)
st.image(enlarge(tile(images[neighbours], columns=5), 4),
         caption="labels " + ", ".join(choice.class_names[int(labels[i])] for i in neighbours)
         + " · nearest in the 10-D latent, which keeps like with like far more often than the "
           "2-D map can", output_format="PNG")
