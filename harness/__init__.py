"""Drives the real app for the tests, the benchmark and the README's screenshots: a
`streamlit run app.py` on a free loopback port and Debian's Chromium through Playwright."""
