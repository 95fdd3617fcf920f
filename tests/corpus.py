"""A corpus of hostile and odd upload files, generated in code (nothing binary is committed).

Each case is ``(name, data, expectation)``: expectation is "digit" (must give a 28x28
digit) or a fragment of the ValueError message a user must see.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

NOT_AN_IMAGE = "not a PNG, JPEG, GIF, BMP or WebP"
DAMAGED = "damaged or incomplete"
TOO_BIG = "megapixels"
NO_DIGIT = "No digit found"
TOO_SMALL = "too small"
TOO_THIN = "too thin"


def digit_on_paper(digit: np.ndarray, side: int = 112, dark_ink: bool = True) -> np.ndarray:
    """An MNIST digit (28x28 in [0, 1]) as a larger uint8 scan: dark ink on white paper."""
    big = np.asarray(Image.fromarray((digit * 255).astype(np.uint8)).resize((side, side), Image.BILINEAR))
    return (255 - big) if dark_ink else big


def encode(array_or_image, fmt: str, **options) -> bytes:
    image = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_bomb(side: int = 40000) -> bytes:
    """A real 1-bit PNG of side x side pixels, ~200 KB compressed, 1.6 GB once decoded to grey."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    block = row * 1000
    data = b"".join(compressor.compress(block) for _ in range(side // 1000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def with_orientation(upright: np.ndarray, orientation: int) -> bytes:
    """A JPEG whose stored pixels are rotated so that EXIF `orientation` turns them upright."""
    image = Image.fromarray(upright)
    stored = {3: image.transpose(Image.Transpose.ROTATE_180),
              6: image.transpose(Image.Transpose.ROTATE_90),
              8: image.transpose(Image.Transpose.ROTATE_270)}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def build_corpus(digit: np.ndarray) -> list[tuple[str, bytes, str]]:
    """At least 30 cases around one real MNIST digit (28x28 float in [0, 1])."""
    scan = digit_on_paper(digit)
    png = encode(scan, "PNG")
    jpeg = encode(scan, "JPEG", quality=90)
    rng = np.random.default_rng(0)

    sixteen = Image.fromarray(scan.astype(np.uint16) * 257)  # Pillow reads uint16 as "I;16".
    assert sixteen.mode == "I;16"
    palette = Image.fromarray(scan).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    paper_index = palette.getpixel((0, 0))
    rgba_black_strokes = np.zeros((*scan.shape, 4), dtype=np.uint8)
    rgba_black_strokes[..., 3] = 255 - scan  # Black ink whose opacity is the stroke.
    rgba_white_strokes = np.full((*scan.shape, 4), 255, dtype=np.uint8)
    rgba_white_strokes[..., 3] = 255 - scan
    frames = [Image.fromarray(scan)] + [Image.fromarray(rng.integers(0, 255, scan.shape, dtype=np.uint8))
                                         for _ in range(59)]
    animated = io.BytesIO()
    frames[0].save(animated, format="GIF", save_all=True, append_images=frames[1:], duration=40)
    broken_exif = jpeg[:2] + b"\xff\xe1\x00\x10Exif\x00\x00MM\x00\x2a\xff\xff\xff\xff" + jpeg[2:]
    paper = rng.normal(200, 12, (4000, 4000)).clip(0, 255).astype(np.uint8)
    paper[1500:2500, 1500:2500] = np.minimum(paper[1500:2500, 1500:2500], digit_on_paper(digit, side=1000))
    colour = np.stack([np.full_like(scan, 255), np.full_like(scan, 240), scan // 2 + 100], axis=-1)
    colour[scan < 128] = [200, 20, 20]  # Red ink on yellow paper.
    speck = np.full((200, 200), 255, dtype=np.uint8)
    speck[100, 100] = 0
    big_scan = digit_on_paper(digit, side=4000)
    big_rgba = np.zeros((4000, 4000, 4), dtype=np.uint8)
    big_rgba[..., 3] = 255 - big_scan
    small_in_large = np.full((1000, 1000), 255, dtype=np.uint8)
    small_in_large[300:360, 600:660] = digit_on_paper(digit, side=60)

    return [
        ("empty.png", b"", "The file is empty"),
        ("random.png", rng.integers(0, 256, 10_000, dtype=np.uint8).tobytes(), NOT_AN_IMAGE),
        ("text.png", b"Hello, this is a text file renamed to .png\n" * 20, NOT_AN_IMAGE),
        ("page.png", b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>", NOT_AN_IMAGE),
        ("program.png", b"\x7fELF\x02\x01\x01\x00" + bytes(56) + b"\x00" * 200, NOT_AN_IMAGE),
        ("windows.png", b"MZ\x90\x00\x03\x00\x00\x00" + bytes(200), NOT_AN_IMAGE),
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28">'
                        b'<text x="5" y="20">7</text></svg>', NOT_AN_IMAGE),
        ("document.pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", NOT_AN_IMAGE),
        ("scan.tiff", encode(scan, "TIFF"), NOT_AN_IMAGE),
        ("truncated.png", png[: len(png) // 2], DAMAGED),
        ("truncated.jpg", jpeg[: len(jpeg) // 2], DAMAGED),
        ("header-only.png", png[:33], DAMAGED),
        ("bomb.png", png_bomb(), TOO_BIG),
        ("huge-header.jpg", jpeg[:163].replace(struct.pack(">HH", 112, 112), struct.pack(">HH", 65000, 65000)) + jpeg[163:], TOO_BIG),
        ("white.png", encode(np.full((256, 256), 255, np.uint8), "PNG"), NO_DIGIT),
        ("black.png", encode(np.zeros((256, 256), np.uint8), "PNG"), NO_DIGIT),
        ("speck.png", encode(speck, "PNG"), NO_DIGIT),
        ("one-pixel.png", encode(np.zeros((1, 1), np.uint8), "PNG"), TOO_SMALL),
        ("strip.png", encode(np.full((3, 6000), 255, np.uint8), "PNG"), TOO_SMALL),
        ("line.png", encode(np.full((20, 2000), 255, np.uint8), "PNG"), TOO_THIN),
        ("digit.png", png, "digit"),
        ("digit.jpg", jpeg, "digit"),
        ("digit.gif", encode(scan, "GIF"), "digit"),
        ("digit.bmp", encode(scan, "BMP"), "digit"),
        ("digit.webp", encode(scan, "WEBP", quality=90), "digit"),
        ("light-on-dark.png", encode(255 - scan, "PNG"), "digit"),
        ("sixteen-bit.png", encode(sixteen, "PNG"), "digit"),
        ("palette.png", encode(palette, "PNG"), "digit"),
        ("palette-transparent.png", encode(palette, "PNG", transparency=paper_index), "digit"),
        ("rgba-black-strokes.png", encode(rgba_black_strokes, "PNG"), "digit"),
        ("rgba-white-strokes.png", encode(rgba_white_strokes, "PNG"), "digit"),
        ("cmyk.jpg", encode(Image.fromarray(scan).convert("CMYK"), "JPEG", quality=90), "digit"),
        ("animated.gif", animated.getvalue(), "digit"),
        ("orientation-3.jpg", with_orientation(scan, 3), "digit"),
        ("orientation-6.jpg", with_orientation(scan, 6), "digit"),
        ("orientation-8.jpg", with_orientation(scan, 8), "digit"),
        ("broken-exif.jpg", broken_exif, "digit"),
        ("photo-4000.jpg", encode(paper, "JPEG", quality=85), "digit"),
        ("sixteen-bit-4000.png", encode(Image.fromarray(big_scan.astype(np.uint16) * 257), "PNG"), "digit"),
        ("rgba-4000.png", encode(big_rgba, "PNG", compress_level=1), "digit"),
        ("red-on-yellow.png", encode(colour, "PNG"), "digit"),
        ("small-in-large.png", encode(small_in_large, "PNG"), "digit"),
    ]
