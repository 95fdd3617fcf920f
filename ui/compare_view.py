"""The Compare page's live view (``ui/live/compare.js``): the two maps linked in the browser.

Like the views of ``ui/live.py``, its data is a few hundred bytes of settings; the two
decoders, the two maps' points and the script itself are immutable assets, so hovering,
clicking and selecting send nothing to the server.
"""

from __future__ import annotations

import streamlit as st

from ae_core import store

from . import assets, live, state

_CSS = live._CSS + """
.pair { display: flex; flex-wrap: wrap; gap: 2rem; }
/* Room for the longest readout, so that the maps below never move while the pointer is on them. */
.pair .readout { width: 22rem; min-height: 4.2em; }
"""


def _make_component():
    module = store.put_asset((live._PRELUDE + (live.SCRIPTS / "compare.js").read_text()).encode(), "js")
    loader = (live.SCRIPTS / "loader.js").read_text().replace("MODULE_URL", assets.url(module))
    return st.components.v2.component("latent_compare", js=loader, css=_CSS, isolate_styles=True)


_compare = _make_component()


def linked_maps(left: state.Choice, right: state.Choice, left_chart: str, right_chart: str,
                titles: tuple[str, str]):
    """The images decoded under the pointer by both models, and the marks on both charts.

    Returns the component's result; ``result.failed`` holds the reason when the browser could
    not decode."""
    settings = {side: {"chart": chart, "title": title, "decoder": assets.url(state.decoder_asset(choice)),
                       "points": assets.url(state.points_asset(choice))}
                for side, choice, chart, title in (("left", left, left_chart, titles[0]),
                                                   ("right", right, right_chart, titles[1]))}
    return _compare(key="live_compare", data=live.envelope(settings), on_failed_change=live._ignore)
