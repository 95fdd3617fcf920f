"""Turn an uploaded photo or scan of a handwritten digit into an MNIST-style 28x28.

MNIST's digits were made like this, and ``prepare_digit`` repeats it step by step:
greyscale; bright ink on a dark background; cropped to the ink; fitted into 20x20
keeping the aspect ratio; placed in 28x28 so that the centre of mass is at the centre.

>>> image = image_to_mnist(open("seven.png", "rb").read())   # doctest: +SKIP
>>> image.shape, image.dtype, float(image.max())              # doctest: +SKIP
((28, 28, 1), dtype('float32'), 1.0)

Uploads come from strangers, so the file is treated as hostile:

* Only PNG, JPEG, GIF, BMP and WebP are decoded, recognised from the bytes themselves
  (Pillow's format sniffing), never from the file name.
* The pixel count is read from the header and checked *before* decoding. The limit,
  ``MAX_PIXELS`` = 4096 x 4096 (16.8 megapixels), admits any phone photo (12 MP) yet
  keeps the decoded image under 64 MB even as RGBA; Pillow's own limit (89 MP, about
  360 MB as RGBA) would let one upload take most of a small server's memory.
* Only the first frame of an animation is read; EXIF orientation is applied when it is
  readable and ignored when it is broken; 16-bit images are scaled, not clipped; a
  transparent background counts as paper.
* Every refusal is a ``ValueError`` whose message is one sentence for the user.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
UPLOAD_EXTENSIONS = ("png", "jpg", "jpeg", "gif", "bmp", "webp")
MAX_BYTES = 5 * 1024 * 1024  # Matches server.maxUploadSize in .streamlit/config.toml.
MAX_PIXELS = 4096 * 4096
MIN_SIDE = 8  # Fewer pixels than this across cannot hold a recognisable digit.
MAX_ASPECT = 20  # A strip 20 times longer than wide is a line, not a digit.
WORKING_SIDE = 1024  # Larger images are shrunk to this first: plenty for a 20x20 result.
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


def image_to_mnist(data: bytes) -> np.ndarray:
    """Bytes of an image file -> (28, 28, 1) float32 in [0, 1]; ValueError if unusable."""
    return prepare_digit(data).mnist


def prepare_digit(data: bytes) -> DigitSteps:
    """Like ``image_to_mnist``, but returns every step of the preparation."""
    grey, alpha = _decode(data)
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


def _decode(data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode safely to a grey image in [0, 1] and its alpha (None if fully opaque)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError("The upload could not be read as a file.")
    if len(data) == 0:
        raise ValueError("The file is empty.")
    if len(data) > MAX_BYTES:
        raise ValueError(f"The file is larger than {MAX_BYTES // 2**20} MB; please upload a smaller image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on odd metadata; we judge the pixels.
            image = Image.open(io.BytesIO(bytes(data)), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError:  # Pillow's own, far larger limit, hit while opening.
        raise ValueError(f"The image has far more than the {MAX_PIXELS // 10**6} megapixels this "
                         f"app accepts; please scale it down.") from None
    except Exception:  # UnidentifiedImageError, and whatever a hostile header provokes.
        if _looks_like_allowed_format(bytes(data[:16])):
            raise ValueError("The image file is damaged or incomplete and cannot be decoded.") from None
        raise ValueError("This file is not a PNG, JPEG, GIF, BMP or WebP image.") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ValueError(f"The image is {width}x{height} pixels, more than the "
                         f"{MAX_PIXELS // 10**6} megapixels this app accepts; please scale it down.")
    if min(width, height) < MIN_SIDE:
        raise ValueError(f"The image is {width}x{height} pixels, too small to hold a digit.")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ValueError(f"The image is {width}x{height} pixels, too thin to hold a digit.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.seek(0)  # Only the first frame of an animation.
            if image.format == "JPEG":
                # Decode a large JPEG at a reduced scale straight away: fast and small.
                image.draft(image.mode if image.mode in ("L", "RGB") else None,
                            (WORKING_SIDE, WORKING_SIDE))
            image.load()
            image = _apply_orientation(image)
            grey, alpha = _to_grey_and_alpha(image)
    except Exception:  # Truncated or corrupt pixel data: OSError, SyntaxError, struct.error, ...
        raise ValueError("The image file is damaged or incomplete and cannot be decoded.") from None
    return grey, alpha


def _looks_like_allowed_format(head: bytes) -> bool:
    """Whether the first bytes are the signature of an allowed format (even if the rest is broken)."""
    return (head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM"))
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"))


def _apply_orientation(image: Image.Image) -> Image.Image:
    """Turn the image upright per its EXIF tag; a broken tag is ignored, not fatal."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        return image


def _to_grey_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Grey levels in [0, 1] (0 = black) and alpha in [0, 1] or None, at most ~WORKING_SIDE wide.

    Large images are first shrunk by an integer box average (cheap, and it keeps thin strokes),
    so a 4000x4000 upload costs little more than a 1000x1000 one.
    """
    factor = -(-max(image.size) // WORKING_SIDE)  # Ceiling division.
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = _block_mean(np.asarray(image), factor)
        top = float(values.max()) if values.size else 0.0
        if mode == "F":
            scale = top if top > 1.0 else 1.0
        else:  # 16-bit greys span 0..65535: scale, never clip, so mid-grey stays mid-grey.
            scale = 65535.0 if (mode != "I" or top > 255) else 255.0
        return np.clip(values / scale, 0.0, 1.0), None
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    if mode not in ("L", "RGB", "RGBA", "LA"):
        # Palettes (their transparency survives only this way), CMYK, 1-bit, ...
        image = image.convert("RGBA" if has_alpha else "RGB")
    if factor > 1:
        image = image.reduce(factor)
    if not has_alpha:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0, None
    image = image.convert("RGBA")
    alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
    grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    return grey, (alpha if alpha.min() < 1.0 else None)


def _block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks (the array is cropped to whole blocks)."""
    values = values.astype(np.float32)
    if factor <= 1:
        return values
    height, width = (values.shape[0] // factor) * factor, (values.shape[1] // factor) * factor
    blocks = values[:height, :width].reshape(height // factor, factor, width // factor, factor)
    return blocks.mean(axis=(1, 3))


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
