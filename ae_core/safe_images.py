"""Decode an image file from a stranger into grey levels, within bounded memory.

An upload is hostile until decoded, so ``decode_grey`` checks all it can before decoding:

* Only PNG, JPEG, GIF, BMP and WebP are decoded, recognised from the bytes themselves
  (Pillow's format sniffing), never from the file name.
* ``check_file`` refuses a file over ``max_bytes``, if the caller has a limit; a web server
  passes its own upload limit (ui/uploads.py), since the bytes are already in memory here.
* The pixel count is read from the header and checked *before* decoding. The limit,
  ``MAX_PIXELS`` = 4096 x 4096 (16.8 megapixels), admits any phone photo (12 MP); Pillow's
  own limit (89 MP, about 360 MB as RGBA) would let one upload take most of a small server's
  memory. Two formats cost more per pixel and have lower limits: WebP (Pillow decodes it
  through four full-size RGBA buffers) at ``MAX_WEBP_PIXELS`` = 2048 x 2048, and a
  progressive JPEG (libjpeg holds all its coefficients) at 64 MiB of coefficients.
* A PNG or WebP may hold at most ``MAX_METADATA_BYTES`` (1 MB) besides its pixels (text,
  EXIF, colour profile, private chunks), counted from the chunk headers before decoding;
  Pillow would keep up to three copies of it beside the image.
* The decoded image is the only full-size copy: conversion and shrinking run in strips of
  ``STRIP_ROWS`` rows, JPEGs are decoded at a reduced scale, and EXIF orientation is applied
  to the shrunk result. The worst file these limits admit (a 4096 x 4096 RGBA PNG) peaks at
  84 MB in a fresh process; tests/test_digits.py holds every worst case under 90 MB.
* Only the first frame of an animation is read; EXIF orientation is applied when it is
  readable and ignored when it is broken; 16-bit images are scaled, not clipped.
* Every refusal is a ``ValueError`` whose message is one sentence for the user.

How many decodes may run at once is the caller's to bound: each may take the memory above.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np
from PIL import ExifTags, Image, PngImagePlugin

ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
UPLOAD_EXTENSIONS = ("png", "jpg", "jpeg", "gif", "bmp", "webp")  # The file names of those formats.
MAX_PIXELS = 4096 * 4096
# Pillow decodes WebP through four full-size RGBA buffers (libwebp's canvases, a bytes copy,
# the image): 2048 x 2048 peaks at 75 MB, within what a 4096 x 4096 PNG costs (84 MB).
MAX_WEBP_PIXELS = 2048 * 2048
# libjpeg holds every DCT coefficient of a progressive JPEG (2 bytes each) however small it is
# asked to decode it: at most as much as the largest decoded image, 4 bytes x MAX_PIXELS.
MAX_PROGRESSIVE_JPEG_BYTES = 4 * MAX_PIXELS
# What a PNG or WebP may hold besides its pixels (text, EXIF, colour profile, private chunks):
# Pillow keeps all of it in memory, up to three copies, beside the decoded image.
MAX_METADATA_BYTES = 10**6
# Pillow's own cap on decompressed PNG text (64 MB by default, for the whole process).
PngImagePlugin.MAX_TEXT_MEMORY = min(PngImagePlugin.MAX_TEXT_MEMORY, MAX_METADATA_BYTES)
TOO_MUCH_METADATA = (f"The file holds more than {MAX_METADATA_BYTES // 10**6} MB of data besides the "
                     f"picture (text, EXIF or a colour profile); please save it again without it.")
STRIP_ROWS = 256  # Large images are converted and shrunk this many rows at a time.
# Larger images are shrunk to about this side while decoding: plenty for a 28x28 result, and
# what comes after works on a few megabytes.
WORKING_SIDE = 1024


def check_file(data: bytes, max_bytes: int | None = None) -> None:
    """The checks that need no decoding: a file, not empty, not over ``max_bytes`` (None: any size)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError("The upload could not be read as a file.")
    if len(data) == 0:
        raise ValueError("The file is empty.")
    if max_bytes is not None and len(data) > max_bytes:
        raise ValueError(f"The file is larger than {max_bytes / 10**6:g} MB; please upload a smaller image.")


def _any_dimensions(width: int, height: int) -> None:
    """The default of ``decode_grey``'s ``check_dimensions``: every size within the pixel limits."""


def decode_grey(data: bytes, check_dimensions: Callable[[int, int], None] = _any_dimensions,
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode safely to a grey image in [0, 1] (0 = black), at most about ``WORKING_SIDE``
    wide, and its alpha in [0, 1] (None if fully opaque).

    ``check_dimensions(width, height)`` is called with the header's size once the limits
    above have passed and before any pixel is decoded; it raises ``ValueError`` to refuse."""
    if _metadata_bytes(data) > MAX_METADATA_BYTES:  # Before Pillow reads (and copies) any of it.
        raise ValueError(TOO_MUCH_METADATA)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on odd metadata; we judge the pixels.
            image = Image.open(io.BytesIO(bytes(data)), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError:  # Pillow's own, far larger limit, hit while opening.
        raise ValueError(f"The image has far more than the {MAX_PIXELS / 10**6:.1f} megapixels this "
                         f"app accepts; please scale it down.") from None
    except Exception as error:  # UnidentifiedImageError, and whatever a hostile header provokes.
        if _is_text_limit(error):
            raise ValueError(TOO_MUCH_METADATA) from None
        if _looks_like_allowed_format(bytes(data[:16])):
            raise ValueError("The image file is damaged or incomplete and cannot be decoded.") from None
        raise ValueError("This file is not a PNG, JPEG, GIF, BMP or WebP image.") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ValueError(f"The image is {width}x{height} pixels, more than the "
                         f"{MAX_PIXELS / 10**6:.1f} megapixels this app accepts; please scale it down.")
    if image.format == "WEBP" and width * height > MAX_WEBP_PIXELS:
        raise ValueError(f"The WebP image is {width}x{height} pixels, more than the "
                         f"{MAX_WEBP_PIXELS / 10**6:.1f} megapixels this app accepts in WebP; please "
                         f"scale it down or save it as PNG or JPEG.")
    if image.format in ("JPEG", "MPO") and _progressive_jpeg_bytes(image) > MAX_PROGRESSIVE_JPEG_BYTES:
        raise ValueError(f"The progressive JPEG is {width}x{height} pixels, too large for this app to "
                         f"decode within its memory limit; please scale it down or save it as PNG.")
    check_dimensions(width, height)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.seek(0)  # Only the first frame of an animation.
            if image.format in ("JPEG", "MPO"):  # MPO: a phone's JPEG with extra pictures.
                # Decode a large JPEG at a reduced scale straight away: fast and small.
                image.draft(image.mode if image.mode in ("L", "RGB") else None,
                            (WORKING_SIDE, WORKING_SIDE))
            image.load()
            transpose = _orientation(image)
            grey, alpha = _to_grey_and_alpha(image)
            del image  # The full-size pixels go now, before the smaller steps allocate.
            if transpose is not None:  # Upright, applied to the shrunk image: no full-size copy.
                grey = _transpose(grey, transpose)
                alpha = None if alpha is None else _transpose(alpha, transpose)
    except Exception as error:  # Truncated or corrupt pixel data: OSError, SyntaxError, struct.error, ...
        if _is_text_limit(error):  # Compressed PNG text after the pixels, over the limit.
            raise ValueError(TOO_MUCH_METADATA) from None
        raise ValueError("The image file is damaged or incomplete and cannot be decoded.") from None
    return grey, alpha


def _is_text_limit(error: Exception) -> bool:
    """Whether Pillow stopped at ``PngImagePlugin.MAX_TEXT_MEMORY`` (its ValueError names it)."""
    return isinstance(error, ValueError) and "MAX_TEXT_MEMORY" in str(error)


def _progressive_jpeg_bytes(image: Image.Image) -> int:
    """What libjpeg's coefficient buffers take for a progressive JPEG (0 for a baseline one)."""
    if not image.info.get("progressive") or not getattr(image, "layer", None):
        return 0
    width, height = image.size
    most_h = max(h for _, h, _, _ in image.layer)
    most_v = max(v for _, _, v, _ in image.layer)
    return sum(2 * width * height * h * v // (most_h * most_v) for _, h, v, _ in image.layer)


def _metadata_bytes(data: bytes) -> int:
    """Bytes in a PNG's or WebP's chunks other than pixel data, read from the chunk headers alone.

    0 for other formats (JPEG is decoded at a reduced scale, GIF and BMP keep little besides
    the pixels). A malformed chunk list ends the count; Pillow then judges the file."""
    view = memoryview(data)
    if bytes(view[:8]) == b"\x89PNG\r\n\x1a\n":
        position, pixels, big_endian, pad = 8, (b"IDAT", b"fdAT"), True, 4  # 4: each chunk's CRC.
    elif bytes(view[:4]) == b"RIFF" and bytes(view[8:12]) == b"WEBP":
        position, pixels, big_endian, pad = 12, (b"VP8 ", b"VP8L", b"ALPH", b"ANMF"), False, 0
    else:
        return 0
    total = 0
    while position + 8 <= len(view):
        size = int.from_bytes(view[position: position + 4] if big_endian else view[position + 4: position + 8],
                              "big" if big_endian else "little")
        kind = bytes(view[position + 4: position + 8] if big_endian else view[position: position + 4])
        if kind == b"IEND":
            break
        if kind not in pixels:
            total += size
        position += 8 + size + pad + (0 if big_endian else size % 2)  # RIFF pads chunks to even sizes.
    return total


def _looks_like_allowed_format(head: bytes) -> bool:
    """Whether the first bytes are the signature of an allowed format (even if the rest is broken)."""
    return (head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM"))
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"))


# EXIF orientation -> the transposition that makes the image upright (as ImageOps.exif_transpose).
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


def _orientation(image: Image.Image) -> Image.Transpose | None:
    """How to turn the image upright per its EXIF tag; a broken tag is ignored, not fatal.

    ``ImageOps.exif_transpose`` would do it on the full-size image, and returns a full-size
    copy even when there is nothing to turn; the caller turns the shrunk image instead."""
    try:
        return _UPRIGHT.get(image.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:
        return None


def _transpose(values: np.ndarray, method: Image.Transpose) -> np.ndarray:
    """Pillow's ``transpose`` of a float image, on the array."""
    return np.array(Image.fromarray(np.ascontiguousarray(values, dtype=np.float32)).transpose(method))


def _to_grey_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Grey levels in [0, 1] (0 = black) and alpha in [0, 1] or None, at most ~WORKING_SIDE wide.

    Large images are first shrunk by an integer box average (cheap, and it keeps thin strokes),
    so a 4000x4000 upload costs little more than a 1000x1000 one. The shrinking, and any
    conversion before it, runs ``STRIP_ROWS`` rows at a time, so the decoded image is the
    only full-size copy.
    """
    factor = -(-max(image.size) // WORKING_SIDE)  # Ceiling division.
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = _block_mean(image, factor)
        top = float(values.max()) if values.size else 0.0
        if mode == "F":
            scale = top if top > 1.0 else 1.0
        else:  # 16-bit greys span 0..65535: scale, never clip, so mid-grey stays mid-grey.
            scale = 65535.0 if (mode != "I" or top > 255) else 255.0
        return np.clip(values / scale, 0.0, 1.0), None
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    # Palettes (their transparency survives only this way), CMYK, 1-bit, ... become RGB(A).
    target = mode if mode in ("L", "RGB", "RGBA", "LA") else ("RGBA" if has_alpha else "RGB")
    image = _reduce(image, factor, target)
    if not has_alpha:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0, None
    image = image.convert("RGBA")
    alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
    grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    return grey, (alpha if alpha.min() < 1.0 else None)


def _strips(height: int, factor: int) -> range:
    """Tops of row strips whose height is a whole number of ``factor`` blocks."""
    return range(0, height, factor * max(1, STRIP_ROWS // factor))


def _reduce(image: Image.Image, factor: int, mode: str) -> Image.Image:
    """``image.convert(mode).reduce(factor)``, strip by strip: no full-size converted copy."""
    if factor <= 1:
        return image if image.mode == mode else image.convert(mode)
    width, height = image.size
    step = factor * max(1, STRIP_ROWS // factor)
    reduced = Image.new(mode, (-(-width // factor), -(-height // factor)))
    for top in _strips(height, factor):
        strip = image.crop((0, top, width, min(height, top + step)))  # Keeps palette and transparency.
        if strip.mode != mode:
            strip = strip.convert(mode)
        reduced.paste(strip.reduce(factor), (0, top // factor))
    reduced.info = dict(image.info)  # A grey or RGB image's "transparency" still applies.
    return reduced


def _block_mean(image: Image.Image, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks as float32 (cropped to whole blocks), strip by strip."""
    if factor <= 1:
        return np.asarray(image, dtype=np.float32)
    width, height = (image.size[0] // factor) * factor, (image.size[1] // factor) * factor
    step = factor * max(1, STRIP_ROWS // factor)
    rows = []
    for top in _strips(height, factor):
        values = np.asarray(image.crop((0, top, width, min(height, top + step))), dtype=np.float32)
        rows.append(values.reshape(values.shape[0] // factor, factor, width // factor, factor).mean(axis=(1, 3)))
    return np.concatenate(rows)
