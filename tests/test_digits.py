"""image_to_mnist on real MNIST digits, in every form a user might upload, and on hostile files."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

import corpus
from ae_core import image_to_mnist, prepare_digit
from conftest import ROOT, with_pythonpath


@pytest.fixture(scope="module")
def digit(test_set):
    images, labels = test_set
    return images[int(np.flatnonzero(labels == 7)[0]), ..., 0]


@pytest.fixture(scope="module")
def cases(digit):
    return corpus.build_corpus(digit)


@pytest.fixture(scope="module")
def read_digits():
    """The evaluation classifier (98.6% on MNIST): which digit a 28x28 image shows."""
    from ae_core.evaluate import load_classifier

    classifier = load_classifier()
    return lambda images: classifier.predict(np.asarray(images), verbose=0).argmax(axis=1)


def test_corpus_is_big_enough(cases):
    assert len(cases) >= 30
    assert len({name for name, _, _ in cases}) == len(cases)


def test_every_case_ends_in_a_digit_or_a_clear_error(cases, read_digits):
    outcomes, accepted = {}, {}
    for name, data, expectation in cases:
        try:
            result = image_to_mnist(data)
        except ValueError as error:
            message = str(error)
            assert expectation != "digit", f"{name}: refused with {message!r}"
            assert expectation in message, f"{name}: {message!r} lacks {expectation!r}"
            assert message.endswith(".") and message.count(". ") == 0, f"{name}: not one sentence"
            outcomes[name] = message
            continue
        assert expectation == "digit", f"{name}: accepted, but should say {expectation!r}"
        assert result.shape == (28, 28, 1) and result.dtype == np.float32
        assert result.min() >= 0 and result.max() == pytest.approx(1.0)
        outcomes[name] = "digit"
        accepted[name] = result
    assert len(outcomes) == len(cases)
    # Every accepted upload was made from a 7, and still reads as one after preparation.
    readings = dict(zip(accepted, read_digits(list(accepted.values()))))
    assert readings == {name: 7 for name in accepted}


def test_same_pixels_in_any_form_give_the_same_28x28(cases):
    by_name = {name: data for name, data, _ in cases}
    reference = image_to_mnist(by_name["digit.png"])
    assert np.abs(image_to_mnist(by_name["palette-transparent.png"])
                  - image_to_mnist(by_name["palette.png"])).max() < 0.01
    for name in ("digit.gif", "digit.bmp", "sixteen-bit.png",
                 "rgba-black-strokes.png", "rgba-white-strokes.png", "light-on-dark.png", "animated.gif"):
        assert np.abs(image_to_mnist(by_name[name]) - reference).max() < 0.1, name
    upright = image_to_mnist(by_name["digit.jpg"])
    for name in ("orientation-3.jpg", "orientation-6.jpg", "orientation-8.jpg", "broken-exif.jpg"):
        assert np.abs(image_to_mnist(by_name[name]) - upright).mean() < 0.02, name


def test_steps_follow_the_mnist_recipe(cases):
    steps = prepare_digit(dict((n, d) for n, d, _ in cases)["digit.png"])
    assert steps.inverted  # Dark ink on light paper was turned into bright ink.
    assert max(steps.fitted.shape) == 20  # Fitted into 20x20, aspect kept.
    rows, columns = np.indices((28, 28))
    mass = steps.mnist[..., 0]
    centre = ((rows * mass).sum() / mass.sum(), (columns * mass).sum() / mass.sum())
    assert abs(centre[0] - 14) <= 0.6 and abs(centre[1] - 14) <= 0.6


def test_mnist_digits_survive_the_round_trip(test_set, read_digits):
    """200 real test digits, drawn as dark-on-light scans, still read as their labels."""
    images, labels = test_set
    prepared = [image_to_mnist(corpus.encode(corpus.digit_on_paper(image), "PNG"))
                for image in images[:200, ..., 0]]
    original_accuracy = np.mean(read_digits(images[:200]) == labels[:200])
    accuracy = np.mean(read_digits(prepared) == labels[:200])
    assert accuracy >= original_accuracy - 0.03, (accuracy, original_accuracy)


CHILD = """
import json, pathlib, sys, time
from ae_core import image_to_mnist
report = []
for path in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    data = path.read_bytes()
    start = time.perf_counter()
    try:
        image_to_mnist(data); outcome = "digit"
    except ValueError as error:
        outcome = str(error)
    except BaseException as error:
        outcome = "ESCAPED " + type(error).__name__ + ": " + str(error)
    report.append([path.name, outcome, time.perf_counter() - start])
# VmHWM is this process's own peak; ru_maxrss would inherit the forking parent's peak.
status = pathlib.Path("/proc/self/status").read_text()
peak_mb = int(next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps({"report": report, "peak_mb": peak_mb}))
"""


def test_corpus_in_a_fresh_process_is_fast_and_small(cases, tmp_path):
    """Time and peak memory of every case, measured in a process that only reads the files."""
    for name, data, _ in cases:
        (tmp_path / name).write_bytes(data)
    result = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300,
                            env=with_pythonpath(ROOT))
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(measured["report"]) == len(cases)
    for name, outcome, seconds in measured["report"]:
        assert not outcome.startswith("ESCAPED"), f"{name}: {outcome}"
        assert seconds < 2.0, f"{name} took {seconds:.2f} s"
    # The peak of the whole process bounds the peak of every single case.
    assert measured["peak_mb"] < 500, measured["peak_mb"]
    for name, outcome, seconds in measured["report"]:  # Shown with pytest -s: the corpus table.
        print(f"corpus | {name} | {seconds * 1000:.0f} ms | {outcome}")
    print(f"corpus | peak memory of the process | {measured['peak_mb']:.0f} MB |")


# --- The limits that bound an upload's memory (docs/security.md) ---------------------------

DECODE_PEAK_MB = 90  # The stated bound on one preparation; the worst measured is about 84 MB.


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def test_a_file_of_exactly_max_bytes_passes_and_one_byte_more_is_refused(digit):
    """The server's limit is ui/uploads.py's (tests/test_uploads.py); this is the parameter."""
    max_bytes = 2 * 10**6
    png = corpus.encode(corpus.digit_on_paper(digit), "PNG")
    padded = png + bytes(max_bytes - len(png))  # Decoders stop at IEND; the rest is ignored.
    assert image_to_mnist(padded, max_bytes=max_bytes).shape == (28, 28, 1)
    with pytest.raises(ValueError, match=r"^The file is larger than 2 MB; please upload a smaller image\.$"):
        image_to_mnist(padded + b"\0", max_bytes=max_bytes)
    assert image_to_mnist(padded + b"\0").shape == (28, 28, 1)  # By default the pixels are the limit.


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_as_pillow_would(digit, orientation):
    """Turned after shrinking (no full-size copy), yet the same pixels as ImageOps.exif_transpose."""
    from PIL import ImageOps

    scan = corpus.digit_on_paper(digit, side=120)[:, 10:]  # Not square: a turn shows.
    data = corpus.encode(scan, "PNG", exif=_exif(orientation))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))), dtype=np.float32) / 255
    assert np.array_equal(prepare_digit(data).grey, expected)


def test_a_large_turned_photo_is_turned_too(digit):
    upright = corpus.digit_on_paper(digit, side=1600)
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_270)  # Orientation 8 undoes it.
    data = corpus.encode(stored, "JPEG", quality=90, exif=_exif(8))
    reference = image_to_mnist(corpus.encode(upright, "JPEG", quality=90))
    assert np.abs(image_to_mnist(data) - reference).mean() < 0.02


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def test_metadata_beyond_a_megabyte_is_refused_before_decoding(digit):
    png = corpus.encode(corpus.digit_on_paper(digit), "PNG")
    small_text = png[:33] + _png_chunk(b"tEXt", b"Comment\0" + b"x" * 500_000) + png[33:]
    assert image_to_mnist(small_text).shape == (28, 28, 1)
    refusal = r"more than 1 MB of data besides the picture"
    big_exif = png[:33] + _png_chunk(b"eXIf", b"MM\0*" + bytes(2_000_000)) + png[33:]
    after_pixels = png[:-12] + _png_chunk(b"prVt", bytes(2_000_000)) + png[-12:]
    webp = io.BytesIO()
    Image.fromarray(corpus.digit_on_paper(digit)).save(webp, format="WEBP", icc_profile=bytes(2_000_000))
    for data in (big_exif, after_pixels, webp.getvalue()):
        with pytest.raises(ValueError, match=refusal):
            image_to_mnist(data)
    # Text that only grows when decompressed (3 KB here, 2.7 MB decompressed), before or after
    # the pixels: Pillow's own cap, lowered to the same megabyte, stops it.
    bomb = b"".join(_png_chunk(b"zTXt", f"k{i}".encode() + b"\0\0" + zlib.compress(bytes(900_000)))
                    for i in range(3))
    for data in (png[:33] + bomb + png[33:], png[:-12] + bomb + png[-12:]):
        with pytest.raises(ValueError, match=refusal):
            image_to_mnist(data)


def test_webp_and_progressive_jpeg_have_lower_pixel_limits(digit):
    from ae_core.safe_images import MAX_WEBP_PIXELS

    big_webp = corpus.encode(np.full((2049, 2048), 255, np.uint8), "WEBP", lossless=True)
    with pytest.raises(ValueError, match=r"The WebP image is 2048x2049 pixels, more than the 4\.2 megapixels"):
        image_to_mnist(big_webp)
    assert MAX_WEBP_PIXELS == 2048 * 2048
    scan = corpus.digit_on_paper(digit)
    progressive = corpus.encode(np.stack([scan] * 3, axis=-1), "JPEG", progressive=True, subsampling=0)
    assert image_to_mnist(progressive).shape == (28, 28, 1)
    # The same header claiming 3400 x 3400: 69 MB of coefficients at 4:4:4, refused unread.
    header = progressive.index(b"\xff\xc2")
    claimed = (progressive[:header] + progressive[header:header + 20].replace(
        struct.pack(">HH", 112, 112), struct.pack(">HH", 3400, 3400)) + progressive[header + 20:])
    with pytest.raises(ValueError, match=r"^The progressive JPEG is 3400x3400 pixels, too large"):
        image_to_mnist(claimed)


PEAK_CHILD = """
import json, pathlib, sys
from ae_core import prepare_digit
def kb(key):
    text = pathlib.Path("/proc/self/status").read_text()
    return int(next(l for l in text.splitlines() if l.startswith(key)).split()[1])
data = pathlib.Path(sys.argv[1]).read_bytes()
pathlib.Path("/proc/self/clear_refs").write_text("5")  # Resets VmHWM to the current size.
before = kb("VmRSS")
try:
    prepare_digit(data); outcome = "digit"
except ValueError as error:
    outcome = str(error)
print(json.dumps([(kb("VmHWM") - before) / 1024, outcome]))
"""


def _worst_admitted_files(digit) -> dict[str, bytes]:
    """The files that cost most to prepare within the limits, each with a digit to find."""
    side = 4096
    scan = corpus.digit_on_paper(digit, side=side)
    rgba = np.zeros((side, side, 4), dtype=np.uint8)
    rgba[..., 3] = 255 - scan  # Four bytes a pixel once decoded: the largest decoded image.
    palette = Image.fromarray(scan).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    mpo = io.BytesIO()
    Image.fromarray(scan).convert("RGB").save(mpo, format="MPO", save_all=True,
                                              append_images=[Image.fromarray(scan).convert("RGB")])
    return {
        "rgba-4096-turned.png": corpus.encode(rgba, "PNG", compress_level=1, exif=_exif(6)),
        "sixteen-bit-4096.png": corpus.encode(Image.fromarray(scan.astype(np.uint16) * 257), "PNG"),
        "palette-transparent-4096.png": corpus.encode(palette, "PNG", transparency=palette.getpixel((0, 0))),
        "cmyk-4096.jpg": corpus.encode(Image.fromarray(scan).convert("CMYK"), "JPEG", quality=90),
        "phone-mpo-4096.jpg": mpo.getvalue(),
        "webp-rgba-2048.webp": corpus.encode(rgba[::2, ::2].copy(), "WEBP", lossless=True),
        "progressive-444-3340.jpg": corpus.encode(
            np.stack([corpus.digit_on_paper(digit, side=3340)] * 3, axis=-1), "JPEG",
            progressive=True, subsampling=0, quality=90),
    }


@pytest.mark.slow  # A fresh Python for each file: about 14 s.
def test_worst_admitted_files_stay_within_the_decode_bound(digit, tmp_path):
    """Peak memory of each preparation, each in a fresh process (one process would reuse the
    memory an earlier file freed, and understate the later ones): the per-decode term of the bound."""
    report = {}
    for name, data in _worst_admitted_files(digit).items():
        (tmp_path / name).write_bytes(data)
        result = subprocess.run([sys.executable, "-c", PEAK_CHILD, str(tmp_path / name)], cwd=ROOT,
                                capture_output=True, text=True, timeout=120,
                                env=with_pythonpath(ROOT))
        assert result.returncode == 0, result.stderr[-3000:]
        report[name] = json.loads(result.stdout.strip().splitlines()[-1])
    for name, (peak_mb, outcome) in sorted(report.items()):
        print(f"decode peak | {name} | {peak_mb:.1f} MB | {outcome}")
    assert {name: outcome for name, (_, outcome) in report.items()} == {name: "digit" for name in report}
    assert max(peak for peak, _ in report.values()) <= DECODE_PEAK_MB
