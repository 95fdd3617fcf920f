"""Links: every parameter of every page, given hostile values, is dropped with one line and
never crashes the page; '/' forwards every parameter; reversed ranges are put in order."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from test_app import APP, TIMEOUT, live_settings
from ui.links import PAGE_PARAMETERS, check

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


def _controls(url_path: str) -> None:
    """An app of one page's URL-bound controls, each drawn from its declaration in ui/links.py."""
    import streamlit as st

    from ui import links

    for spec in links.PAGE_PARAMETERS[url_path]:
        if hasattr(spec, "draw"):
            spec.draw(st, spec.name)


def _drawn(url_path: str, params: dict[str, list[str]]) -> AppTest:
    app = AppTest.from_function(_controls, args=(url_path,), default_timeout=30)
    for name, values in params.items():
        app.query_params[name] = values
    return app.run()


def _element(app: AppTest, name: str):
    return next(element for kind in ("slider", "number_input", "radio") for element in getattr(app, kind)
                if element.key == name)


def _reachable(element, value) -> bool:
    """Whether a user could set ``element`` to ``value`` with the widget itself: an option, or
    numbers within its bounds on its steps, a range's ends in order."""
    if element.type == "radio":
        return value in element.options
    ends = list(value) if isinstance(value, tuple) else [value]
    on_steps = all(element.min <= end <= element.max
                   and abs((end - element.min) / element.step - round((end - element.min) / element.step)) < 1e-6
                   for end in ends)
    return on_steps and ends == sorted(ends)


def _meaning(values: list[str]):
    try:
        numbers = tuple(float(value) for value in values)
    except ValueError:
        return values[0]
    return numbers if len(numbers) == 2 else numbers[0]


def _taken(url_path: str, params: dict[str, list[str]]) -> dict[str, bool]:
    """For each control, whether its widget, opened on a link with ``params``, shows exactly
    that value and could have been set to it by hand. The controls are independent, so one
    run tries one value for each."""
    app = _drawn(url_path, params)
    if app.exception:  # Streamlit itself failed on a value: try each alone to know which.
        if len(params) == 1:
            return dict.fromkeys(params, False)
        return {name: _taken(url_path, {name: values})[name] for name, values in params.items()}
    taken = {}
    for name, values in params.items():
        element = _element(app, name)
        shown, meaning = element.value, _meaning(values)
        if isinstance(shown, tuple) and isinstance(meaning, tuple):
            same = len(shown) == 2 and all(abs(a - b) < 1e-9 for a, b in zip(shown, meaning))
        elif isinstance(shown, (int, float)) and isinstance(meaning, float):
            same = abs(shown - meaning) < 1e-9
        else:
            same = shown == meaning
        taken[name] = same and _reachable(element, shown)
    return taken


def _candidates(element) -> list[list[str]]:
    """Values around each edge of the widget, between its steps, and not numbers at all."""
    if element.type == "radio":
        return [[option] for option in element.options] + [["Label"], [""], ["none;drop"]]
    low, high, step = element.min, element.max, element.step
    singles = [low, low + step, high, high - step, low - step, high + step, low + step / 2,
               (low + high) / 2 + step / 3, "abc", "1e309", "nan", "-inf"]
    texts = [[f"{value:g}" if isinstance(value, float) else str(value)] for value in singles]
    if isinstance(element.value, tuple):  # A range: two ends, in either order, meeting or not.
        return [[f"{low:g}", f"{high:g}"], [f"{high:g}", f"{low:g}"], [f"{low + step:g}"] * 2,
                [f"{low - step:g}", f"{high:g}"], [f"{low + step / 2:g}", f"{high:g}"], [f"{low:g}"],
                [f"{low:g}", "abc"]]
    return texts


@pytest.mark.parametrize("url_path", ["map", "grid", "sliders", "paths"])
def test_the_link_check_refuses_exactly_what_each_widget_drawn_from_its_declaration_cannot_take(url_path):
    bare = _drawn(url_path, {})
    assert not bare.exception, [e.value for e in bare.exception]
    names = [spec.name for spec in PAGE_PARAMETERS[url_path] if hasattr(spec, "draw")]
    assert names, f"the {url_path} page declares no URL-bound control"
    candidates = {name: _candidates(_element(bare, name)) for name in names}
    for round_ in range(max(map(len, candidates.values()))):
        raw = {name: values[round_] for name, values in candidates.items() if round_ < len(values)}
        checked = {name: check(url_path, {name: values}) for name, values in raw.items()}
        cleaned = {name: result[0][name] for name, result in checked.items() if name in result[0]}
        taken_raw = _taken(url_path, raw)
        changed = {name: values for name, values in cleaned.items() if values != raw[name]}
        taken_cleaned = {**taken_raw, **(_taken(url_path, changed) if changed else {})}
        for name, values in raw.items():
            notes = checked[name][1]
            if name in cleaned:  # Kept, perhaps put in order or in the dataset's word: the widget shows it.
                assert not notes and taken_cleaned[name], (name, values, cleaned[name])
            else:
                assert len(notes) == 1 and not taken_raw[name], (name, values, notes)
