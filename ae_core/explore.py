"""What the app shows, computed from a model: the decoded grid, paths, errors, drift, neighbours.

These are the pieces of maths the pages need, kept here so that the pages only read
widgets and render, and so that each piece is tested without a browser.

>>> z, z1_values, z2_values = latent_grid(size=3, low=-1, high=1)
>>> z.tolist()
[[-1.0, 1.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [-1.0, -1.0], [0.0, -1.0], [1.0, -1.0]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import WINDOW



MAX_GRID_IMAGE = 50  # Digits per side of the largest decoded grid image.


def latent_grid(size: int = 10, low: float = WINDOW[0], high: float = WINDOW[1]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes of a size x size grid over [low, high]^2, row by row, top row z2 = high.

    Returns ``(z, z1_values, z2_values)``: z has shape (size*size, 2); z1_values are
    the columns' z1 from left to right and z2_values the rows' z2 from top to bottom.
    """
    if size < 1:
        raise ValueError(f"The grid size must be at least 1, not {size}.")
    if not low < high:
        raise ValueError(f"The range must have low < high, got [{low}, {high}].")
    z1_values = np.linspace(low, high, size, dtype=np.float32)
    z2_values = z1_values[::-1].copy()  # Images are drawn top-down, so z2 falls row by row.
    z1, z2 = np.meshgrid(z1_values, z2_values)
    return np.stack([z1.ravel(), z2.ravel()], axis=1), z1_values, z2_values


def tile(images: np.ndarray, columns: int) -> np.ndarray:
    """(N, 28, 28[, 1]) images -> one (rows*28, columns*28) image, filled row by row."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4:
        images = images[..., 0]
    count, height, width = images.shape
    rows = -(-count // columns)
    canvas = np.zeros((rows * height, columns * width), dtype=np.float32)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        canvas[row * height:(row + 1) * height, column * width:(column + 1) * width] = image
    return canvas


def decode_grid(model, size: int = 10, low: float = WINDOW[0], high: float = WINDOW[1]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The article's figure: ``(image, z1_values, z2_values)`` decoded over [low, high]^2."""
    if not 1 <= size <= MAX_GRID_IMAGE:
        # A 50x50 grid is already a 1400x1400 image; beyond that it is memory, not insight.
        raise ValueError(f"The grid size must be between 1 and {MAX_GRID_IMAGE}, not {size}.")
    z, z1_values, z2_values = latent_grid(size, low, high)
    return tile(model.decode(z), columns=size), z1_values, z2_values


def latent_table(latents: np.ndarray, labels: np.ndarray, errors: np.ndarray | None = None
                 ) -> pd.DataFrame:
    """The encoded test set as one DataFrame: index, label, z1, z2 (, z3, ...)
    and, when given, each digit's reconstruction_error."""
    table = pd.DataFrame(latents, columns=[f"z{i + 1}" for i in range(latents.shape[1])])
    table.insert(0, "label", np.asarray(labels, dtype=np.int64))
    table.insert(0, "index", np.arange(len(table)))
    if errors is not None:
        table["reconstruction_error"] = np.asarray(errors, dtype=np.float32)
    return table


def reconstruction_errors(model, images: np.ndarray) -> np.ndarray:
    """Each image's mean squared error per pixel after encoding and decoding, shape (N,).

    The mean of these is the test MSE docs/model.md quotes; their spread is what the map's
    error colouring and the gallery of the worst digits show.
    """
    images = np.asarray(images, dtype=np.float32)
    difference = model.reconstruct(images) - images
    return np.mean(difference.reshape(len(images), -1) ** 2, axis=1)


def worst(errors: np.ndarray, count: int = 20) -> np.ndarray:
    """Indices of the ``count`` largest errors, largest first.

    >>> worst(np.array([0.1, 0.5, 0.2, 0.9]), count=2).tolist()
    [3, 1]
    """
    errors = np.asarray(errors)
    return np.argsort(-errors, kind="stable")[:count]


def segment(start: np.ndarray, end: np.ndarray, steps: int = 10) -> np.ndarray:
    """``steps`` codes evenly spaced on the straight line from ``start`` to ``end``, both included.

    >>> segment(np.array([0.0, 0.0]), np.array([1.0, -2.0]), steps=3).tolist()
    [[0.0, 0.0], [0.5, -1.0], [1.0, -2.0]]
    """
    if not 2 <= steps <= 100:
        raise ValueError(f"A path needs between 2 and 100 steps, not {steps}.")
    start, end = np.asarray(start, dtype=np.float32), np.asarray(end, dtype=np.float32)
    if start.shape != end.shape or start.ndim != 1:
        raise ValueError(f"The two ends must be codes of the same size, got {start.shape} and {end.shape}.")
    fractions = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, np.newaxis]
    return (1 - fractions) * start + fractions * end


def decode_path(model, start: np.ndarray, end: np.ndarray, steps: int = 10
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(strip, codes)``: the ``steps`` images decoded along the segment, side by side."""
    codes = segment(start, end, steps)
    return tile(model.decode(codes), columns=steps), codes


def reencoding_drift(model, size: int = 40, low: float = WINDOW[0], high: float = WINDOW[1]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How far decoding then re-encoding moves each point of a grid: ‖z − E(D(z))‖.

    Returns ``(drift, z1_values, z2_values)`` with drift of shape (size, size), laid out
    like ``latent_grid`` (top row z2 = high). Where the drift is small the decoder draws
    something the encoder maps back to the same place; where it is large the decoder
    draws images the encoder would never produce from that code.
    """
    z, z1_values, z2_values = latent_grid(size, low, high)
    round_trip = model.encode(model.decode(z))
    drift = np.linalg.norm(round_trip - z, axis=1).reshape(size, size)
    return drift, z1_values, z2_values


def nearest(query: np.ndarray, latents: np.ndarray, count: int = 5) -> np.ndarray:
    """Indices of the ``count`` rows of ``latents`` closest to ``query`` (Euclidean), nearest first."""
    distances = np.sum((np.asarray(latents) - np.asarray(query).reshape(1, -1)) ** 2, axis=1)
    count = min(count, len(distances))
    closest = np.argpartition(distances, count - 1)[:count]
    return closest[np.argsort(distances[closest], kind="stable")]


def fraction_inside(latents: np.ndarray, low: float = WINDOW[0], high: float = WINDOW[1]) -> float:
    """Share of codes whose every coordinate lies in [low, high]."""
    return float(np.mean(np.all((latents >= low) & (latents <= high), axis=1)))
