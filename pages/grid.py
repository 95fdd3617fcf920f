"""The article's figure: images decoded on a regular grid over the latent plane."""

import streamlit as st

from ui import assets, frame, links, state, vae
from ui.figures import grid_figure
from ui.images import to_png


choice = frame.page("Decoded grid")
st.caption("Each cell is the decoder's drawing of one point (z1, z2) of a regular grid. "
           "Nothing here comes from the data: it is what the decoder imagines everywhere.")
state.models_or_stop(choice)

size_column, range_column = st.columns([1, 2])
size = links.GRID_SIZE.draw(size_column, "Grid size")
# A VAE's codes follow its prior N(0, I), so its grid can span the prior instead of the window.
span = "range"
if choice.kind == "vae":
    span = links.GRID_SPAN.draw(size_column, "Span", horizontal=True,
                                 captions=["the range beside", f"the prior's ±{vae.PRIOR_SPAN:g}σ"])
low, high = links.GRID_RANGE.draw(range_column, "Range of z1 and z2", disabled=span == "prior")
if span == "prior":
    low, high = -vae.PRIOR_SPAN, vae.PRIOR_SPAN
if low >= high:
    st.error("The range needs two different ends; drag them apart.")
    st.stop()
image, z1_values, z2_values, picture = state.decoded_grid(choice, size, low, high)
st.plotly_chart(grid_figure(assets.url(picture), image.shape[0], z1_values, z2_values), key="grid_chart",
                config={"displaylogo": False, "staticPlot": False})
st.download_button("Download the grid (PNG)", data=lambda: to_png(image), key="download_grid",
                   file_name=f"{choice.dataset}_grid_{size}x{size}_{low:g}_{high:g}.png", mime="image/png",
                   on_click="ignore", icon=":material/download:")

if choice.kind == "vae":
    st.subheader("Sample from the prior")
    st.caption(f"{vae.PRIOR_SAMPLES} codes z drawn from N(0, I), the prior the VAE was trained towards, "
               "each decoded: new images the model makes up.")

    def next_draw() -> None:  # A callback: it runs before the page's script, whatever that does.
        st.session_state["prior_draw"] = st.session_state.get("prior_draw", 0) + 1

    st.button("Sample from the prior", key="sample_prior", icon=":material/casino:", on_click=next_draw)
    draw = st.session_state.get("prior_draw")
    if draw:
        codes, picture = vae.prior_samples(choice, draw)
        st.markdown(f"![{vae.PRIOR_SAMPLES} images decoded from the prior]({assets.url(picture)})")
        st.caption(f"Draw {draw} (numpy's default_rng({draw}).standard_normal), row by row: "
                   + ", ".join(f"({z1:.2f}, {z2:.2f})" for z1, z2 in codes))
