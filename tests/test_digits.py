"""image_to_mnist on real MNIST digits, in every form a user might upload, and on hostile files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import corpus
from ae_core import image_to_mnist, prepare_digit
from conftest import ROOT


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
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
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
