"""Pictures for the page: crisp enlargements, PNG bytes, square previews, the small map.

Browsers smooth small images when they scale them up, which blurs a 28x28 digit; the
pages send enlarged pixels instead, so that every model pixel stays a visible square.

>>> enlarge(np.array([[0.0, 1.0]]), scale=2).tolist()
[[0, 0, 255, 255], [0, 0, 255, 255]]
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ae_core.config import WINDOW


def enlarge(image: np.ndarray, scale: int = 8) -> np.ndarray:
    """A [0, 1] image (H, W[, 1]) -> uint8 (H*scale, W*scale) with crisp square pixels."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        image = image[..., 0]
    pixels = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    return np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)


def to_png(image: np.ndarray) -> bytes:
    """A [0, 1] greyscale (H, W[, 1]) or uint8 (H, W[, 3]) image as PNG bytes, for downloads."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = enlarge(image, 1)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def pad_to_square(image: np.ndarray) -> np.ndarray:
    """Centre a (H, W) image on a square of its own corner colour, for display at a fixed width.

    >>> pad_to_square(np.ones((1, 3))).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[..., 0]
    height, width = image.shape
    side = max(height, width)
    square = np.full((side, side), image[0, 0], dtype=image.dtype)
    top, left = (side - height) // 2, (side - width) // 2
    square[top:top + height, left:left + width] = image
    return square


def preview(image: np.ndarray, side: int = 224) -> np.ndarray:
    """A preparation step as a uint8 square of at most about ``side`` pixels (a large upload's
    steps are 1024 wide): shrunk first, so that no full-size copy is made.

    >>> preview(np.ones((1000, 500)), side=224).shape
    (200, 200)
    """
    factor = -(-max(image.shape[:2]) // side)
    if factor > 1:
        image = np.asarray(Image.fromarray(np.asarray(image, dtype=np.float32)).reduce(factor))
    return enlarge(pad_to_square(image), 1)


def scatter_raster(latents: np.ndarray, labels: np.ndarray, colors: np.ndarray,
                   side: int = 240, low: float = WINDOW[0], high: float = WINDOW[1]) -> np.ndarray:
    """A small RGB picture (side, side, 3) uint8 of the 2-D latents over [low, high]^2.

    ``colors`` is (classes, 3) uint8, one colour per label. The pad and the upload page draw
    on it instead of re-sending a 10,000-point interactive chart.
    """
    canvas = np.full((side, side, 3), 255, dtype=np.uint8)
    columns, rows = _to_pixels(latents[:, 0], latents[:, 1], side, low, high)
    inside = (columns >= 0) & (columns < side) & (rows >= 0) & (rows < side)
    canvas[rows[inside], columns[inside]] = colors[np.asarray(labels)[inside]]
    canvas[[0, -1], :] = 120  # A grey frame marks the window's edge.
    canvas[:, [0, -1]] = 120
    return canvas


def mark(raster: np.ndarray, point: tuple[float, float], low: float = WINDOW[0],
         high: float = WINDOW[1], radius: int = 6) -> np.ndarray:
    """A copy of ``raster`` with a black ring and cross at latent ``point`` (clipped to the edge)."""
    side = raster.shape[0]
    column, row = _to_pixels(np.array([point[0]]), np.array([point[1]]), side, low, high)
    column, row = int(np.clip(column[0], 0, side - 1)), int(np.clip(row[0], 0, side - 1))
    marked = raster.copy()
    rows, columns = np.ogrid[:side, :side]
    distance = np.sqrt((rows - row) ** 2 + (columns - column) ** 2)
    marked[(distance <= radius + 1) & (distance >= radius - 1)] = 0
    marked[row, max(column - radius, 0): column + radius + 1] = 0
    marked[max(row - radius, 0): row + radius + 1, column] = 0
    return marked


def _to_pixels(z1: np.ndarray, z2: np.ndarray, side: int, low: float, high: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Latent coordinates -> (column, row) pixel indices; z2 grows upwards."""
    scale = (side - 1) / (high - low)
    columns = np.round((np.asarray(z1) - low) * scale).astype(np.int64)
    rows = np.round((high - np.asarray(z2)) * scale).astype(np.int64)
    return columns, rows
