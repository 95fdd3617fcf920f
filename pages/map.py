"""The 10,000 test images as points of the 2-D latent: hover to see what the decoder draws
anywhere, click or select to see the images themselves."""

import numpy as np
import streamlit as st

from ae_core.config import WINDOW
from ae_core.explore import tile
from ui import frame, links, live, state, vae
from ui.images import enlarge
from ui.selection import parse_selection


GALLERY_CAP = 60
WORST_COUNT = 20

choice = frame.page("Latent map")
st.caption(f"Each dot is one test image at the code (z1, z2) the encoder gives it. Hover anywhere "
           f"(or hold a finger on the map) to see what the decoder draws there; click a dot to "
           f"choose that {choice.item()}. The dashed square is the [{WINDOW[0]:g}, {WINDOW[1]:g}]² window of the decoded grid.")

model, model_10d, table = state.models_and_table_or_stop(choice)

# Every choice is bound to the URL, so a copied link reopens this exact view. They live in a
# popover, so that the map itself is in view as the page opens, on a laptop's screen too.
with st.popover("Colours and background", icon=":material/palette:"):
    # The options are written as they appear in the URL (?colour=error&background=drift).
    colour_by = links.COLOUR.draw(st, "Colour the points by", horizontal=True,
                                   captions=["its class", "how badly it is reconstructed"])
    # "digits" on MNIST, "images" on Fashion-MNIST: the link's word is the option's own.
    decoded = choice.item(2)
    background = links.BACKGROUND.draw(
        st, "Under the points", offered=links.backgrounds(decoded), horizontal=True,
        captions=["", "the decoded plane", "‖z − E(D(z))‖"],
        help=f"{decoded}: what the decoder draws at each place of the plane. drift: how far decoding "
             "then re-encoding moves a point; dark where the decoder draws images the encoder "
             "would never produce.")
    density = links.DENSITY.draw(st, "Background density", disabled=background == "none",
                                   help="Images per side of the decoded background, and half the cells "
                                        "per side of the drift map")
    opacity = links.OPACITY.draw(st, "Background opacity", disabled=background == "none")


def follow_click() -> None:
    """Keep the URL's ``index`` and the recent clicks in step with the chart's selection."""
    selection = parse_selection(st.session_state["map_chart"])
    if selection.kind == "point":
        st.session_state["index"] = selection.indices[0]
        # The path page offers the last two clicked images as its ends.
        st.session_state["recent_clicks"] = [*st.session_state.get("recent_clicks", [])[-1:],
                                             selection.indices[0]]
    else:
        st.session_state["index"] = None


def image_panel(index: int, images: np.ndarray) -> None:
    row = table.iloc[index]
    z = (float(row["z1"]), float(row["z2"]))
    st.subheader(f"Test image #{index} · {choice.class_names[int(row['label'])]}")
    original, reconstruction, decoded = st.columns(3)
    original.image(enlarge(images[index], 5), caption="the test image", output_format="PNG")
    reconstruction.image(enlarge(model_10d.reconstruct(images[index:index + 1])[0], 5),
                         caption="10-D reconstruction", output_format="PNG")
    decoded.image(enlarge(model.decode(np.array([z]))[0], 5),
                  caption=f"decoded at ({z[0]:.2f}, {z[1]:.2f})", output_format="PNG")
    st.caption("With a 2-D code, the 2-D reconstruction *is* the image decoded at the "
               "point; the 10-D model, which keeps five times more, is shown for comparison.")


def selection_panel(chosen: list[int], kind: str, images: np.ndarray) -> None:
    st.subheader(f"{len(chosen):,} {choice.item(len(chosen))} selected ({kind})")
    labels = table["label"].to_numpy()[chosen]
    counts = np.bincount(labels, minlength=len(choice.class_names))
    st.bar_chart({"class": list(choice.class_names), "count": counts}, x="class", y="count",
                 height=180, x_label="class", y_label="count", sort=False)
    # A random sample stands for the whole selection; the first few would all be one class.
    shown = sorted(np.random.default_rng(len(chosen)).choice(chosen, min(GALLERY_CAP, len(chosen)),
                                                              replace=False))
    st.image(enlarge(tile(images[shown], columns=10), 2), output_format="PNG",
             caption=f"{len(shown)} of the {len(chosen):,}, picked at random" if len(chosen) > len(shown) else None)


@st.fragment
def explorer() -> None:
    chart_column, panel = st.columns([3, 2], gap="medium")
    with panel:
        hover_slot = st.container()  # Above the number, though it needs the number first.
        index = links.TEST_INDEX.draw(st, f"Test image (0 to {len(table) - 1})",
                                              placeholder="click a point, or type a number")
    chosen = None if index is None else tuple(float(v) for v in table.iloc[int(index)][["z1", "z2"]])
    with hover_slot:
        # The browser rings the chosen image over the chart, so a click leaves the figure
        # unchanged; only when its script fails does the figure carry the ring instead.
        hover = live.map_hover(choice, "map_chart", ring=chosen)
    selection = parse_selection(st.session_state.get("map_chart"))
    figure = state.map_figure(choice, colour_by, background, density, opacity,
                              ring=int(index) if index is not None and hover.failed else None)
    posterior = None
    if choice.kind == "vae" and index is not None:  # A VAE codes each image as a distribution.
        posterior = vae.posterior(choice, state.test_images_or_stop(choice)[int(index)])
        figure = vae.with_ellipse(figure, *posterior)
    with panel:
        # Streamlit makes a plain drag pan when clicks choose points (in select mode a click
        # would clear instead), so the toolbar stays in view and the caption says where to go.
        st.caption(f":material/highlight_alt: To select many {choice.item(2)}, pick **Box select** or "
                   f"**Lasso select** in the toolbar just above the map, then drag over them.")
    with chart_column:
        # The figure comes without its points; this view adds them in the browser. Before the
        # chart, so that the points are on their way while plotly loads.
        live.map_points(choice, "map_chart")
        st.plotly_chart(figure, key="map_chart", on_select=follow_click,
                        selection_mode=("points", "box", "lasso"),
                        config={"displaylogo": False, "scrollZoom": True, "displayModeBar": True})
    with panel:
        # The test images (and TensorFlow) are needed only from here: the map is drawn without them.
        if selection.kind in ("box", "lasso"):
            selection_panel(selection.indices, selection.kind, state.test_images_or_stop(choice))
        elif index is not None:
            image_panel(int(index), state.test_images_or_stop(choice))
            if posterior is not None:
                mean, sigma = posterior
                st.caption(f"The VAE's posterior of this {choice.item()}: mean ({mean[0]:.2f}, {mean[1]:.2f}), "
                           f"σ ({sigma[0]:.2f}, {sigma[1]:.2f}); the ellipse on the map spans 2σ.")
        else:
            st.info(f"Click a point to see that {choice.item()}, or select many with Box or Lasso select.")


explorer()

if colour_by == "error":
    errors = state.test_errors(choice)
    st.caption(f"The colour scale stops at the 99th percentile of the errors, "
               f"{np.percentile(errors, 99):.3f}; the worst reach {errors.max():.3f}.")
    st.subheader(f"The {WORST_COUNT} worst-reconstructed test images")
    st.caption("Top: the test image; bottom: its 2-D reconstruction. Odd shapes, and now and "
               "then an image whose label looks wrong, gather here.")
    worst = state.worst_images(choice, WORST_COUNT)
    for row in range(0, len(worst), 10):  # One st.columns per row keeps reading order.
        for column, image in zip(st.columns(10), worst[row:row + 10]):
            column.image(enlarge(image.pair, 3), output_format="PNG",
                         caption=f"#{image.index} · {choice.class_names[image.label]} · {image.error:.3f}")

st.download_button("Download the latents (CSV)", data=lambda: state.latents_csv(choice), key="download_latents",
                   file_name=f"{choice.dataset}_test_latents.csv", mime="text/csv", on_click="ignore",
                   icon=":material/download:",
                   help="tfds_index, label, z1, z2 and reconstruction_error of all 10,000 test images, "
                        "in tensorflow-datasets' order, which is also the order of this page's numbers")
