"""Shared fixtures. Data tests read the real MNIST files through AE_DATA_DIR (set by
.ci/run and the README's test command); nothing here downloads anything."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Quieten TensorFlow's start-up chatter in test output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

def with_pythonpath(folder: Path) -> dict[str, str]:
    """The environment for a child Python that imports the project in ``folder`` first,
    keeping whatever PYTHONPATH the tests were given."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}


# A subset and batch size that train, in about 10 s, to a model clearly better than the
# average image (otherwise train() rightly refuses to write it).
QUICK = dict(train_subset=3000, batch_size=32, epochs=2)


@pytest.fixture(scope="session")
def test_set():
    import ae_core

    return ae_core.load_mnist("test")


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """A real short training run on an MNIST subset: ``(out_dir, card)``."""
    from ae_core.config import TrainConfig
    from ae_core.train import train

    out_dir = tmp_path_factory.mktemp("quick_run")
    card = train(TrainConfig(latent_dim=2, seed=1, **QUICK), out_dir, verbose=0)
    return out_dir, card


@pytest.fixture
def quick_copy(quick_run, tmp_path):
    """A private copy of the quick run's folder, for tests that damage it."""
    out_dir, card = quick_run
    copy = tmp_path / "weights"
    shutil.copytree(out_dir, copy)
    return copy, card


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium through Playwright, for one test module."""
    from playwright.sync_api import sync_playwright

    from harness.browser import launch_chromium

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()
