"""What the app shows, computed from a model: the decoded grid, neighbours, tiles.

These are the pieces of maths the pages need, kept here so that the pages only read
widgets and render, and so that each piece is tested without a browser.

>>> z, z1_values, z2_values = latent_grid(size=3, low=-1, high=1)
>>> z.tolist()
[[-1.0, 1.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [-1.0, -1.0], [0.0, -1.0], [1.0, -1.0]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WINDOW = (-5.0, 5.0)  # The latent window the app explores, as in the article.


def latent_grid(size: int = 10, low: float = -5.0, high: float = 5.0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes of a size x size grid over [low, high]^2, row by row, top row z2 = high.

    Returns ``(z, z1_values, z2_values)``: z has shape (size*size, 2); z1_values are
    the columns' z1 from left to right and z2_values the rows' z2 from top to bottom.
    """
    if not 1 <= size <= 50:
        raise ValueError(f"The grid size must be between 1 and 50, not {size}.")
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


def decode_grid(model, size: int = 10, low: float = -5.0, high: float = 5.0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The article's figure: ``(image, z1_values, z2_values)`` decoded over [low, high]^2."""
    z, z1_values, z2_values = latent_grid(size, low, high)
    return tile(model.decode(z), columns=size), z1_values, z2_values


def latent_table(latents: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """The encoded test set as one DataFrame: index, label, z1, z2 (, z3, ...)."""
    table = pd.DataFrame(latents, columns=[f"z{i + 1}" for i in range(latents.shape[1])])
    table.insert(0, "label", np.asarray(labels, dtype=np.int64))
    table.insert(0, "index", np.arange(len(table)))
    return table


def nearest(query: np.ndarray, latents: np.ndarray, count: int = 5) -> np.ndarray:
    """Indices of the ``count`` rows of ``latents`` closest to ``query`` (Euclidean), nearest first."""
    distances = np.sum((np.asarray(latents) - np.asarray(query).reshape(1, -1)) ** 2, axis=1)
    count = min(count, len(distances))
    closest = np.argpartition(distances, count - 1)[:count]
    return closest[np.argsort(distances[closest], kind="stable")]


def fraction_inside(latents: np.ndarray, low: float = WINDOW[0], high: float = WINDOW[1]) -> float:
    """Share of codes whose every coordinate lies in [low, high]."""
    return float(np.mean(np.all((latents >= low) & (latents <= high), axis=1)))
