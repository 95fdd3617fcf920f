"""The latent-space explorer. Run it with:  streamlit run app.py"""

import streamlit as st

from ui import sidebar

st.set_page_config(page_title="Latent-space explorer", page_icon=":material/scatter_plot:",
                   layout="wide")

map_page = st.Page("app_pages/map.py", title="Latent map", icon=":material/scatter_plot:", url_path="map")
pages = [
    map_page,
    st.Page("app_pages/grid.py", title="Decoded grid", icon=":material/grid_on:", url_path="grid"),
    st.Page("app_pages/sliders.py", title="Sliders", icon=":material/tune:", url_path="sliders"),
    st.Page("app_pages/upload.py", title="Your digit", icon=":material/draw:", url_path="upload"),
    st.Page("app_pages/paths.py", title="Paths", icon=":material/timeline:", url_path="paths"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
]
# Streamlit serves its default page only at "/", so the map could not also live at "/map".
# The hidden default page sends "/" on to "/map", and every page keeps a stable link.
home = st.Page(lambda: st.switch_page(map_page), title="Home", url_path="home", default=True,
               visibility="hidden")
page = st.navigation([home, *pages])
sidebar.render()
page.run()
