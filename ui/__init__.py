"""The Streamlit side: cached resources, figure builders and the selection parser.

``ui.state`` is the only module with ``st.cache_resource`` / ``st.cache_data``; the pages
call it and ``ae_core`` and render. ``ui.selection`` is pure Python, tested without Streamlit.
"""
