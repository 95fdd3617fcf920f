"""Links: every parameter of every page, given hostile values, is dropped with one line and
never crashes the page; '/' forwards every parameter; reversed ranges are put in order."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from test_app import APP, TIMEOUT, live_settings
from ui.links import PAGE_PARAMETERS

HOSTILE = ["1e309", "-1e309", "Infinity", "nan", "9" * 400]


def _open(page: str | None, params: dict[str, str | list[str]]) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if page:
        app.switch_page(page)
    for name, value in params.items():
        app.query_params[name] = value
    return app.run()


def _notes(app: AppTest) -> list[str]:
    return [caption.value for caption in app.caption if "was ignored" in caption.value]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("url_path", sorted(PAGE_PARAMETERS))
def test_hostile_values_in_every_parameter_are_dropped_with_one_line_each(url_path, value):
    names = ["dataset", "model", *(spec.name for spec in PAGE_PARAMETERS[url_path])]
    app = _open(f"pages/{url_path}.py", {name: value for name in names})
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    assert len(_notes(app)) == len(names), _notes(app)
    # The link no longer carries them (the paths page writes its default ends back in).
    assert all(app.query_params.get(name) != value for name in names), dict(app.query_params)


def test_the_root_link_forwards_every_parameter_to_the_map():
    app = _open(None, {"dataset": "fashion_mnist", "index": "5"})
    assert not app.exception, [e.value for e in app.exception]
    assert app.title[0].value == "Latent map"
    assert app.selectbox(key="dataset").value == "fashion_mnist"
    assert app.subheader[0].value.startswith("Test image #5 · ")


def test_a_reversed_range_is_put_in_order():
    app = _open("pages/grid.py", {"range": ["3", "-3"]})
    assert not app.exception and not app.error and not _notes(app)
    assert app.slider(key="range").value == (-3.0, 3.0)


def test_a_link_value_between_the_sliders_steps_is_dropped_and_a_good_one_kept():
    app = _open("pages/sliders.py", {"z1": "1.234", "z2": "-2.5"})
    assert _notes(app) == [":material/link_off: The link's z1=1.234 was ignored: it must be a number "
                           "from -5 to 5 in steps of 0.05."]
    assert live_settings(app, "live_pad")["z"] == [0.0, -2.5]
