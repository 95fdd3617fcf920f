"""Turn a ``st.plotly_chart(..., on_select="rerun")`` event into test-set indices.

The map has one trace per digit class, so a point's ``point_index`` counts within its
trace and says nothing about the test set. Every data point carries its test index in
``customdata`` instead; points without one (an outline, a marker) are ignored.

>>> event = {"selection": {"points": [{"curve_number": 3, "point_index": 0, "x": 1.5,
...          "y": -2.0, "customdata": [123]}], "box": [], "lasso": []}}
>>> parse_selection(event)
Selection(indices=[123], kind='point', point=(1.5, -2.0))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Selection:
    indices: list[int] = field(default_factory=list)  # Test-set indices, in selection order.
    kind: str = "none"  # "none", "point", "box" or "lasso".
    point: tuple[float, float] | None = None  # (z1, z2) of a single clicked point.


def _get(mapping: Any, key: str, default: Any = None) -> Any:
    """Read ``key`` from a dict or from Streamlit's attribute-style state objects."""
    if isinstance(mapping, Mapping):
        return mapping.get(key, default)
    return getattr(mapping, key, default)


def _index_of(point: Any) -> int | None:
    custom = _get(point, "customdata")
    if isinstance(custom, (list, tuple)):
        custom = custom[0] if custom else None
    if custom is None or isinstance(custom, bool):
        return None
    try:
        index = int(custom)
    except (TypeError, ValueError):
        return None
    return index if index >= 0 and index == custom else None


def parse_selection(event: Any) -> Selection:
    """The test indices an event selects, how they were selected, and a clicked point's z."""
    selection = _get(event, "selection") if event is not None else None
    points = list(_get(selection, "points", None) or []) if selection is not None else []
    indices: list[int] = []
    seen: set[int] = set()
    for point in points:
        index = _index_of(point)
        if index is not None and index not in seen:
            seen.add(index)
            indices.append(index)
    if not indices:
        return Selection()
    if _get(selection, "lasso", None):
        kind = "lasso"
    elif _get(selection, "box", None):
        kind = "box"
    elif len(indices) == 1:
        kind = "point"
    else:
        kind = "box"  # Several points without a shape: shift-clicks; show them as a gallery.
    point = None
    if kind == "point":
        first = next(p for p in points if _index_of(p) == indices[0])
        x, y = _get(first, "x"), _get(first, "y")
        if isinstance(x, (int, float)) and isinstance(y, (int, float)):
            point = (float(x), float(y))
    return Selection(indices=indices, kind=kind, point=point)
