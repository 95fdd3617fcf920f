"""The latent-space explorer. Run it with:  streamlit run app.py

This file is both halves of the app. ``streamlit run`` finds the ``st.App`` below and serves
it with uvicorn: the app's routes and its guard on the websocket (``ui/server.py``) around
Streamlit's own. Streamlit then runs this same file as the script of every page view, where
``__name__`` is ``"__main__"``.
"""

import streamlit as st

if __name__ == "__main__":  # A page view: the frame, the link check, the sidebar, the page.
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    from ui import frame, links, server, sidebar, uploads

    uploads.install()  # One uploaded file per session, from the session's first run.
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
    for control in server.dropped_widget_notes(get_script_run_ctx().session_id):
        st.caption(f":material/block: A value this browser sent for {control} was of the wrong "
                   f"type and was dropped; reload the page if a control looks wrong.")
    with frame.entered():
        page.run()
else:  # Imported by `streamlit run` (or uvicorn app:app): the server.
    from ui import server

    server.guard_widget_states()
    app = st.App(__file__, routes=server.routes(), middleware=server.middleware())
