"""Every control a link can set, declared once: the page draws its widget from the
declaration, and the link check refuses exactly what that widget cannot take.

A page's controls are bound to the URL, so a link reopens a view. Streamlit parses a bound
value itself when the session starts, and some values crash it (an integer input given
``1e309``) or put a widget where no drag can (a slider between its steps). So ``app.py``
checks the link first: a reversed range is put in order, a value no control could take is
dropped with one line saying so, and when anything changed the page is opened again on the
cleaned link, which is the one Streamlit then reads.

>>> Whole("index", 0, 9999).check(["1e309"])
(None, 'index=1e309 was ignored: it must be a whole number from 0 to 9999.')
>>> Range("range", -10.0, 10.0, 0.5, default=(-5.0, 5.0)).check(["3", "-3"])
(['-3', '3'], None)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import ae_core
from ae_core import datasets
from ae_core.config import DATASETS, MODEL_KINDS, SHIPPED, WINDOW
from ae_core.inference import kind_command

MAX_LENGTH = 100  # No honest value is longer; a 400-digit number is not a link.
BIND = "query-params"  # Streamlit keeps a widget with this and a key in the URL, under the key.


def _number(text: str) -> float | None:
    try:
        value = float(text) if len(text) <= MAX_LENGTH else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _steps_from(low: float, value: float, step: float) -> bool:
    """Whether ``value`` lies on the grid low, low + step, ... (to float precision)."""
    count = (value - low) / step
    return abs(count - round(count)) < 1e-6


@dataclass(frozen=True)
class Whole:
    name: str
    low: int
    high: int
    default: int | None = None
    widget: str = "slider"  # Or "number_input": a box to type in, which may start empty.

    def check(self, values: list[str]) -> tuple[list[str] | None, str | None]:
        number = _number(values[-1])
        if len(values) == 1 and number is not None and number.is_integer() and self.low <= number <= self.high:
            return [str(int(number))], None
        return None, (f"{self.name}={values[-1][:20]} was ignored: it must be a whole number from "
                      f"{self.low} to {self.high}.")

    def draw(self, where, label: str, **options) -> int | None:
        """Draw this control in ``where`` (``st`` or a container), bound to the URL; ``options``
        go to Streamlit's widget as they are."""
        return getattr(where, self.widget)(label, min_value=self.low, max_value=self.high, value=self.default,
                                           step=1, key=self.name, bind=BIND, **options)


@dataclass(frozen=True)
class Number:
    name: str
    low: float
    high: float
    step: float
    default: float

    def check(self, values: list[str]) -> tuple[list[str] | None, str | None]:
        number = _number(values[-1])
        if len(values) == 1 and number is not None and self.low <= number <= self.high \
                and _steps_from(self.low, number, self.step):
            return values, None
        return None, (f"{self.name}={values[-1][:20]} was ignored: it must be a number from "
                      f"{self.low:g} to {self.high:g} in steps of {self.step:g}.")

    def draw(self, where, label: str, **options) -> float:
        return where.slider(label, min_value=self.low, max_value=self.high, value=self.default, step=self.step,
                            key=self.name, bind=BIND, **options)


@dataclass(frozen=True)
class Range:
    name: str
    low: float
    high: float
    step: float
    default: tuple[float, float]

    def check(self, values: list[str]) -> tuple[list[str] | None, str | None]:
        numbers = [_number(value) for value in values]
        # Equal ends are allowed: the slider's two handles can meet, and the page says what to do then.
        if len(numbers) == 2 and None not in numbers and all(
                self.low <= number <= self.high and _steps_from(self.low, number, self.step)
                for number in numbers):
            return [f"{number:g}" for number in sorted(numbers)], None  # Reversed ends: put in order.
        return None, (f"{self.name}={'&'.join(values)[:40]} was ignored: it takes two numbers from "
                      f"{self.low:g} to {self.high:g} in steps of {self.step:g}.")

    def draw(self, where, label: str, **options) -> tuple[float, float]:
        return where.slider(label, min_value=self.low, max_value=self.high, value=self.default, step=self.step,
                            key=self.name, bind=BIND, **options)


@dataclass(frozen=True)
class OneOf:
    name: str
    options: tuple[str, ...]

    def check(self, values: list[str]) -> tuple[list[str] | None, str | None]:
        if len(values) == 1 and values[0] in self.options:
            return values, None
        return None, (f"{self.name}={values[-1][:20]} was ignored: it must be one of "
                      f"{', '.join(self.options)}.")

    def draw(self, where, label: str, offered: tuple[str, ...] | None = None, **options) -> str:
        """Draw this control as a radio group offering ``offered`` (by default all its options)."""
        offered = self.options if offered is None else offered
        if not set(offered) <= set(self.options):
            raise ValueError(f"The {self.name} control offers only {', '.join(self.options)}, not "
                             f"{', '.join(sorted(set(offered) - set(self.options)))}; declare them in ui/links.py.")
        return where.radio(label, list(offered), key=self.name, bind=BIND, **options)


@dataclass(frozen=True)
class Pattern:
    name: str
    pattern: str  # A regular expression the whole value must match.
    meaning: str

    def check(self, values: list[str]) -> tuple[list[str] | None, str | None]:
        if len(values) == 1 and re.fullmatch(self.pattern, values[0]):
            return values, None
        return None, f"{self.name}={values[-1][:20]} was ignored: it must be {self.meaning}."


@dataclass(frozen=True)
class Known:
    name: str
    options: Callable[[], tuple[str, ...]]  # Asked at each check: the choices change as runs come and go.
    meaning: str

    def check(self, values: list[str]) -> tuple[list[str] | None, str | None]:
        if len(values) == 1 and values[0] in self.options():
            return values, None
        return None, f"{self.name}={values[-1][:20]} was ignored: it must be {self.meaning}."


@dataclass(frozen=True)
class Kind:
    """A kind of model (``config.MODEL_KINDS``) whose weights exist for the link's dataset and model."""
    name: str
    dataset: str
    model: str

    def check(self, values: list[str]) -> tuple[list[str] | None, str | None]:
        kinds = ae_core.available_kinds(self.dataset, self.model)
        if len(values) == 1 and values[0] in kinds:
            return values, None
        if len(values) == 1 and values[0] in MODEL_KINDS:
            return None, (f"{self.name}={values[0]} was ignored: this model has no {values[0]} weights for "
                          f"{self.dataset} yet; train them with `{kind_command(self.dataset, values[0])}`.")
        return None, (f"{self.name}={values[-1][:20]} was ignored: it must be one of "
                      f"{', '.join(kinds or MODEL_KINDS)}.")


def _runs() -> tuple[str, ...]:
    """The trainings a Train page link can follow: those running or interrupted, and the models
    they became, whichever replica started them; and this server's last run, whose failure or
    cancel leaves no folder, but whose page still says how it ended."""
    from .state import trainer  # Here, not above: state imports this module.

    last = trainer().current
    folder = ae_core.config.models_dir()
    folders = [path.name.removeprefix(".staging-") for path in folder.iterdir() if path.is_dir()] if folder.is_dir() else []
    return tuple(dict.fromkeys(folders + ([last.name] if last is not None else [])))


# Each page's URL-bound controls. The page draws each from here (``DENSITY.draw(st, "…")``),
# so its bounds, step, default, options and widget are written nowhere else.
TEST_INDEX = Whole("index", 0, 9999, widget="number_input")  # One of the 10,000 test images.
COLOUR = OneOf("colour", ("label", "error"))
# The decoded plane under the map, in each dataset's word for its images.
DECODED_PLANE = tuple(dict.fromkeys(dataset.items for dataset in datasets.TABLE))
BACKGROUND = OneOf("background", ("none", *DECODED_PLANE, "drift"))
DENSITY = Whole("density", 5, 40, default=20)
OPACITY = Number("opacity", 0.1, 1.0, 0.05, default=0.5)
GRID_SIZE = Whole("size", 2, 30, default=10)
GRID_RANGE = Range("range", -10.0, 10.0, 0.5, default=WINDOW)
GRID_SPAN = OneOf("span", ("range", "prior"))
Z_STEP = 0.05  # The sliders' step, on which the pad hands the server its points too.
Z1 = Number("z1", *WINDOW, Z_STEP, default=0.0)
Z2 = Number("z2", *WINDOW, Z_STEP, default=0.0)
# The paths page writes its ends into the link by hand (pages/paths.py says why).
PATH_ENDS = {"a": Whole("a", TEST_INDEX.low, TEST_INDEX.high, default=0, widget="number_input"),
             "b": Whole("b", TEST_INDEX.low, TEST_INDEX.high, default=3, widget="number_input")}
PATH_STEPS = Whole("steps", 3, 20, default=10)

# What each page's controls take from a link, by the page's url_path; the sidebar's are in `check`.
PAGE_PARAMETERS = {
    "map": (COLOUR, BACKGROUND, DENSITY, OPACITY, TEST_INDEX),
    "grid": (GRID_SIZE, GRID_RANGE, GRID_SPAN),
    "sliders": (Z1, Z2),
    "paths": (*PATH_ENDS.values(), PATH_STEPS),
    "upload": (),
    "compare": (),  # left and right are kinds, checked in `check` against the link's model.
    # The run this browser started, and its key (pages/train.py), so its starter can stop it.
    "train": (Known("run", _runs, "a training started on this server's Train page"),
              Pattern("key", r"[A-Za-z0-9_-]{16,64}", "the key the Train page gave")),
}


def backgrounds(decoded: str) -> tuple[str, ...]:
    """The map's background options on a dataset whose decoded images are called ``decoded``."""
    return tuple(option for option in BACKGROUND.options if option not in DECODED_PLANE or option == decoded)


def check(url_path: str, params: dict[str, list[str]]) -> tuple[dict[str, list[str]], list[str]]:
    """``(cleaned, notes)``: the link's parameters as the page's controls can take them, and one
    line for each value that was dropped. Parameters no control reads are left alone.

    >>> check("grid", {"dataset": ["cifar"], "size": ["12"]})
    ({'size': ['12']}, ['dataset=cifar was ignored: it must be one of mnist, fashion_mnist.'])
    """
    cleaned, notes = dict(params), []

    def apply(spec) -> None:
        if spec.name in params:
            values, note = spec.check(params[spec.name])
            if values is None:
                del cleaned[spec.name]
                notes.append(note)
            else:
                cleaned[spec.name] = values

    apply(OneOf("dataset", DATASETS))
    dataset = cleaned.get("dataset", ["mnist"])[-1]  # The models on offer depend on the dataset.
    apply(OneOf("model", tuple(ae_core.available_models(dataset)) or (SHIPPED,)))
    model = cleaned.get("model", [SHIPPED])[-1]  # The kinds on offer depend on both.
    apply(Kind("kind", dataset, model))
    if url_path == "compare":
        apply(Kind("left", dataset, model))
        apply(Kind("right", dataset, model))
    for spec in PAGE_PARAMETERS.get(url_path, ()):
        apply(spec)
    if cleaned.get("background", [None])[-1] in DECODED_PLANE:  # The decoded plane, in the dataset's word.
        cleaned["background"] = [datasets.BY_NAME[dataset].items]
    return cleaned, notes
