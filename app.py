"""The latent-space explorer. Run it with:  streamlit run app.py"""

import streamlit as st

from ui import frame, links, sidebar
from ui import uploads  # noqa: F401  Importing it keeps one uploaded file per session (ui/uploads.py).

page, home, pages = frame.navigation()

# Before any widget: a control bound to the URL reads the link when the session starts.
link = {key: st.query_params.get_all(key) for key in st.query_params}
cleaned, notes = links.check(page.url_path, link)
if page is home or cleaned != link:
    st.session_state["link_notes"] = notes
    st.switch_page(pages[0] if page is home else page,
                   query_params=cleaned)
sidebar.render()
for note in st.session_state.pop("link_notes", []):
    st.caption(f":material/link_off: The link's {note}")
with frame.entered():
    page.run()
