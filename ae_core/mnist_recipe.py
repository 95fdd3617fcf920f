"""Turn a photo, scan or drawing of a handwritten digit into an MNIST-style 28x28.

MNIST's digits were made like this, and ``prepare_digit`` repeats it step by step:
greyscale; bright ink on a dark background; cropped to the ink; fitted into 20x20
keeping the aspect ratio; placed in 28x28 so that the centre of mass is at the centre.

>>> image = image_to_mnist(open("seven.png", "rb").read())   # doctest: +SKIP
>>> image.shape, image.dtype, float(image.max())              # doctest: +SKIP
((28, 28, 1), dtype('float32'), 1.0)

The file is decoded by ``ae_core.safe_images``, within its memory limits; a transparent
background counts as paper. Every refusal is a ``ValueError`` whose message is one sentence
for the user. A web server passes its upload policy in: the most bytes it accepts, and a
slot that bounds how many preparations run at once (ui/uploads.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from . import safe_images

MIN_SIDE = 8  # Fewer pixels than this across cannot hold a recognisable digit.
MAX_ASPECT = 20  # A strip 20 times longer than wide is a line, not a digit.
MIN_CONTRAST = 0.12  # Ink must differ from the paper by this much (on a 0-1 scale).


@dataclass(frozen=True)
class DigitSteps:
    """Every intermediate image of ``prepare_digit``, for the page to show."""

    grey: np.ndarray  # (H, W) in [0, 1], as uploaded (after orientation), 0 = black.
    ink: np.ndarray  # (H, W) in [0, 1], ink bright and paper dark, background removed.
    cropped: np.ndarray  # The ink's bounding box.
    fitted: np.ndarray  # Resized so its longer side is 20 pixels, aspect kept.
    mnist: np.ndarray  # (28, 28, 1) float32: fitted, centred by its centre of mass.
    inverted: bool  # Whether the upload was dark ink on light paper.


def image_to_mnist(data: bytes, max_bytes: int | None = None) -> np.ndarray:
    """Bytes of an image file -> (28, 28, 1) float32 in [0, 1]; ValueError if unusable."""
    return prepare_digit(data, max_bytes=max_bytes).mnist


def prepare_digit(data: bytes, max_bytes: int | None = None,
                  slot: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> DigitSteps:
    """Like ``image_to_mnist``, but returns every step of the preparation.

    A file over ``max_bytes`` is refused (None: any size; the pixel limits still bound the
    decoding). ``slot()`` is entered once the file passed that check, around the decoding and
    the steps after it: a server passes one that lets only so many run at once."""
    safe_images.check_file(data, max_bytes)
    with slot():
        return _prepare(data)


def _prepare(data: bytes) -> DigitSteps:
    grey, alpha = safe_images.decode_grey(data, _check_can_hold_a_digit)
    ink, inverted = _to_ink(grey, alpha)
    rows, cols = np.nonzero(ink > 0.25)
    if len(rows) == 0:
        raise ValueError("No digit found: the image has no strokes that stand out from the paper.")
    cropped = ink[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    if max(cropped.shape) < 4:
        raise ValueError("No digit found: the only mark in the image is a speck a few pixels wide.")
    fitted = _fit(cropped, 20)
    mnist = _centre_by_mass(fitted, 28)
    return DigitSteps(grey=grey, ink=ink, cropped=cropped, fitted=fitted,
                      mnist=mnist[..., np.newaxis], inverted=inverted)


def _check_can_hold_a_digit(width: int, height: int) -> None:
    """Refuse, from the header's size alone, an image too small or too thin for a digit."""
    if min(width, height) < MIN_SIDE:
        raise ValueError(f"The image is {width}x{height} pixels, too small to hold a digit.")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ValueError(f"The image is {width}x{height} pixels, too thin to hold a digit.")


def _to_ink(grey: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, bool]:
    """Bright ink on a dark background, the paper's own level removed, in [0, 1]."""
    if alpha is not None:
        # Transparent pixels are paper. Pick the paper that contrasts with what is drawn,
        # so that black strokes and white strokes on transparency both survive.
        opaque = alpha > 0.5
        drawn_level = float(grey[opaque].mean()) if opaque.any() else 0.0
        paper_level = 1.0 if drawn_level < 0.5 else 0.0
        grey = alpha * grey + (1.0 - alpha) * paper_level
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    paper = float(np.median(border))
    inverted = paper > 0.5
    ink = 1.0 - grey if inverted else grey.copy()
    background = 1.0 - paper if inverted else paper
    # The strongest ink, read from 2x2 averages so that one stray pixel cannot set the scale
    # (a percentile would miss a small digit on a large page).
    smoothed = (ink[:-1, :-1] + ink[1:, :-1] + ink[:-1, 1:] + ink[1:, 1:]) / 4
    strongest = float(smoothed.max())
    if strongest - background < MIN_CONTRAST:
        raise ValueError("No digit found: the image is blank or its strokes barely differ from the paper.")
    ink = np.clip((ink - background) / (strongest - background), 0.0, 1.0)
    # Paper texture and JPEG noise sit low on this scale; drop them, keep soft stroke edges.
    ink = np.clip((ink - 0.15) / 0.85, 0.0, 1.0)
    return ink.astype(np.float32), inverted


def _fit(patch: np.ndarray, side: int) -> np.ndarray:
    """Resize so the longer side is ``side`` pixels, keeping the aspect ratio."""
    height, width = patch.shape
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(patch.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _centre_by_mass(patch: np.ndarray, side: int) -> np.ndarray:
    """Place ``patch`` in a ``side`` x ``side`` canvas with its centre of mass at the centre."""
    rows, cols = np.indices(patch.shape)
    mass = float(patch.sum())
    centre_row = float((rows * patch).sum() / mass)
    centre_col = float((cols * patch).sum() / mass)
    # MNIST put the centre of mass at pixel (14, 14) of 0..27, half a pixel past the middle.
    top = int(round(side / 2 - centre_row))
    left = int(round(side / 2 - centre_col))
    # Clamp so the whole patch stays on the canvas (it is at most 20 of 28 pixels).
    top = min(max(top, 0), side - patch.shape[0])
    left = min(max(left, 0), side - patch.shape[1])
    canvas = np.zeros((side, side), dtype=np.float32)
    canvas[top: top + patch.shape[0], left: left + patch.shape[1]] = patch
    peak = float(canvas.max())
    return canvas / peak if peak > 0 else canvas
