"""The app's pages, and the frame every page runs in: the sidebar, the link check, the layout.

Streamlit still has its old multipage mode: while a ``pages/`` folder sits beside the main
script, it runs a requested page's file by itself (without ``app.py``) until ``app.py``'s
``st.navigation`` has run once in the server process. So the first visit after a start, to
``/map`` say, would get the page without its frame. ``.streamlit/config.toml`` hides that
mode's page list, and ``require()``, which every page calls first (through ``page()``),
starts such a run again through ``app.py`` before the page draws anything.
"""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
# Below this window width Streamlit stacks columns: the phone layout, in every style rule.
PHONE_WIDTH = 640
# (file, title, icon, url path); the first is where "/" leads.
PAGES = (
    ("pages/map.py", "Latent map", ":material/scatter_plot:", "map"),
    ("pages/grid.py", "Decoded grid", ":material/grid_on:", "grid"),
    ("pages/sliders.py", "Sliders", ":material/tune:", "sliders"),
    ("pages/upload.py", "Your image", ":material/draw:", "upload"),
    ("pages/paths.py", "Paths", ":material/timeline:", "paths"),
    ("pages/compare.py", "Compare", ":material/compare:", "compare"),
    ("pages/train.py", "Train", ":material/model_training:", "train"),
)

_inside = contextvars.ContextVar("inside_the_app_frame", default=False)


def navigation():
    """``(page, home, pages)``: ``st.navigation`` over the pages and a hidden home page.

    Streamlit serves its default page only at "/", so the map could not also live at
    "/map"; the hidden default page sends "/" on to "/map", and every page keeps a link.
    """
    # The icon is a file of the app's own: with none, the browser would fetch the current
    # page's Material icon from Google's font servers, which a closed network cannot reach.
    st.set_page_config(page_title="Latent-space explorer", page_icon=ROOT / "ui/assets/favicon.png",
                       layout="wide")
    # Streamlit leaves 6rem above a page's title, below the top navigation's 3.5: at 1280x720 that
    # pushed most of the map below the fold. A style-only st.html takes no room on the page.
    # On a phone, plotly's toolbar spans the chart's width and covered the map legend's title,
    # so there it sits in a strip above the chart instead.
    st.html("<style>[data-testid=stMainBlockContainer] { padding-top: 3.5rem; }"
            f"@media (max-width: {PHONE_WIDTH}px) {{"
            " .stElementContainer:has(.js-plotly-plot) { padding-top: 28px; overflow: visible !important; }"
            " .js-plotly-plot { overflow: visible !important; }"
            " .js-plotly-plot .modebar-container { top: -28px !important; } }</style>")
    pages = [st.Page(ROOT / file, title=title, icon=icon, url_path=url_path)
             for file, title, icon, url_path in PAGES]
    home = st.Page(lambda: None, title="Home", url_path="home", default=True, visibility="hidden")
    return st.navigation([home, *pages], position="top"), home, pages


@contextlib.contextmanager
def entered():
    """``app.py`` runs the page inside this."""
    token = _inside.set(True)
    try:
        yield
    finally:
        _inside.reset(token)


def page(title: str):
    """The start of every page: the frame (``require``), the page's title, and the sidebar's
    choice of dataset, model and kind (``state.current()``), which the page returns."""
    require()
    st.title(title)
    from . import state  # Here: the frame is loaded before the pages' heavier modules.

    return state.current()


def require() -> None:
    """Leave Streamlit's old mode and rerun through ``app.py`` if the page runs by itself."""
    if not _inside.get():
        navigation()  # The first st.navigation of the process ends the old mode.
        st.rerun()
