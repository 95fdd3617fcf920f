"""The map's selection events, in the shapes Streamlit 1.67 sends them."""

import pytest

from ui.selection import Selection, parse_selection


def _event(points, box=(), lasso=()):
    return {"selection": {"points": list(points), "point_indices": [p.get("point_index", 0) for p in points],
                          "box": list(box), "lasso": list(lasso)}}


def _point(curve, point_index, index, x=0.5, y=-1.0):
    return {"curve_number": curve, "point_number": point_index, "point_index": point_index,
            "x": x, "y": y, "customdata": [index]}


@pytest.mark.parametrize("event", [None, {}, {"selection": None}, _event([]),
                                   {"selection": {"points": [], "box": [], "lasso": []}}])
def test_empty_selection(event):
    assert parse_selection(event) == Selection()


def test_one_point_gives_its_test_index_and_z():
    selection = parse_selection(_event([_point(curve=7, point_index=3, index=4321, x=1.25, y=-2.5)]))
    assert selection == Selection(indices=[4321], kind="point", point=(1.25, -2.5))


def test_point_index_is_not_mistaken_for_the_test_index():
    # Two traces each have a point_index 0; only customdata tells them apart.
    selection = parse_selection(_event([_point(0, 0, 11), _point(1, 0, 22)],
                                       box=[{"xref": "x", "x": [0, 1], "y": [0, 1]}]))
    assert selection.indices == [11, 22] and selection.kind == "box"


def test_box_and_lasso_across_traces():
    points = [_point(curve, i, 100 * curve + i) for curve in range(3) for i in range(4)]
    box = parse_selection(_event(points, box=[{"x": [-1, 1], "y": [-1, 1]}]))
    assert box.kind == "box" and box.indices == [0, 1, 2, 3, 100, 101, 102, 103, 200, 201, 202, 203]
    assert box.point is None
    lasso = parse_selection(_event(points[:2], lasso=[{"x": [0, 1, 0], "y": [0, 0, 1]}]))
    assert lasso.kind == "lasso" and lasso.indices == [0, 1]


def test_points_without_an_index_are_ignored():
    no_custom = {"curve_number": 10, "point_index": 0, "x": 5, "y": 5}
    bad = [{"customdata": None}, {"customdata": []}, {"customdata": ["seven"]},
           {"customdata": [-3]}, {"customdata": [2.5]}, {"customdata": [True]}]
    assert parse_selection(_event([no_custom, *bad])) == Selection()
    selection = parse_selection(_event([no_custom, _point(2, 9, 77)]))
    assert selection.indices == [77] and selection.kind == "point"


def test_scalar_customdata_and_duplicates():
    points = [{"x": 0, "y": 0, "customdata": 5}, {"x": 0, "y": 0, "customdata": 5.0}]
    assert parse_selection(_event(points)).indices == [5]


def test_attribute_style_state_objects():
    class State:
        def __init__(self, **fields):
            self.__dict__.update(fields)

    event = State(selection=State(points=[_point(1, 2, 3)], box=[], lasso=[]))
    assert parse_selection(event).indices == [3]
