"""MNIST (and Fashion-MNIST) as numpy arrays, loaded through tensorflow-datasets.

Two ways in, in this order:

1. ``AE_DATA_DIR`` is set: tfds builds the dataset offline from the four original
   ``.gz`` files in ``$AE_DATA_DIR/<dataset>/`` (its ``manual_dir``) and verifies their
   checksums. This is how CI and the tests run, since they have no internet.
2. Otherwise tfds downloads as usual, which is what a user's online machine does.

Either way tfds keeps a prepared copy under its data dir (``TFDS_DATA_DIR`` or
``~/tensorflow_datasets``) and later loads read that copy without the network.

Offline with neither, a tfds download retries for minutes before it fails, so we look
for the files first and fail at once with a message that says how to fix it:

>>> images, labels = load_mnist("test")          # doctest: +SKIP
>>> images.shape, images.dtype, labels[:5]        # doctest: +SKIP
((10000, 28, 28, 1), dtype('float32'), array([2, 0, 4, 8, 7]))
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from pathlib import Path

import numpy as np

DATA_DIR_VARIABLE = "AE_DATA_DIR"
SPLITS = ("train", "test")

# The four files tfds's mnist and fashion_mnist builders read from a manual_dir.
SOURCE_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# Human-readable class names, used by the app's legend.
CLASS_NAMES = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "fashion_mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
}

# Where tfds downloads from when no manual_dir is given; we only test that it answers.
_DOWNLOAD_HOST = ("storage.googleapis.com", 443)


class DataUnavailableError(RuntimeError):
    """The dataset is neither prepared, nor in ``AE_DATA_DIR``, nor downloadable."""


def _fix_hint(dataset: str) -> str:
    files = ", ".join(SOURCE_FILES)
    return (
        f"Set the environment variable {DATA_DIR_VARIABLE} to a folder that holds a "
        f"'{dataset}/' subfolder with the four original files ({files}), "
        f"or connect to the internet so that tensorflow-datasets can download them."
    )


def _manual_dir(dataset: str) -> Path | None:
    """``$AE_DATA_DIR/<dataset>`` if the variable is set, after checking its files."""
    root = os.environ.get(DATA_DIR_VARIABLE)
    if not root:
        return None
    folder = Path(root).expanduser().resolve() / dataset
    missing = [name for name in SOURCE_FILES if not (folder / name).is_file()]
    if missing:
        raise DataUnavailableError(
            f"{DATA_DIR_VARIABLE}={root} is set, but {folder} lacks {', '.join(missing)}. "
            + _fix_hint(dataset)
        )
    return folder


def _online(timeout_seconds: float = 0.5) -> bool:
    """Whether tfds's download host answers; a closed network fails fast here."""
    try:
        with socket.create_connection(_DOWNLOAD_HOST, timeout=timeout_seconds):
            return True
    except OSError:
        return False


@functools.lru_cache(maxsize=None)
def _load(split: str, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    import tensorflow_datasets as tfds  # Imported here: it pulls in TensorFlow (~5 s).

    data_dir = os.environ.get("TFDS_DATA_DIR") or None
    builder = tfds.builder(dataset, data_dir=data_dir)
    download_and_prepare_kwargs = {}
    if not builder.is_prepared():
        manual_dir = _manual_dir(dataset)
        if manual_dir is not None:
            download_and_prepare_kwargs["download_config"] = tfds.download.DownloadConfig(
                manual_dir=str(manual_dir)
            )
        elif not _online():
            raise DataUnavailableError(
                f"Cannot load '{dataset}': it is not prepared yet, {DATA_DIR_VARIABLE} is "
                f"not set and the download server is unreachable. " + _fix_hint(dataset)
            )
    images, labels = tfds.as_numpy(
        tfds.load(
            dataset,
            split=split,
            data_dir=data_dir,
            batch_size=-1,
            as_supervised=True,
            download_and_prepare_kwargs=download_and_prepare_kwargs,
        )
    )
    images = images.astype(np.float32) / 255.0
    labels = labels.astype(np.int64)
    # Callers share these arrays through the cache, so nobody may change them in place.
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_mnist(split: str, dataset: str = "mnist") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)`` for ``split`` ("train" or "test") of ``dataset``.

    Images are float32 of shape (N, 28, 28, 1) in [0, 1]; labels are int64 of shape (N,).
    The arrays are read-only and cached: a second call in the same process is free.
    Raises ``ValueError`` for an unknown split or dataset and ``DataUnavailableError``
    (whose message names ``AE_DATA_DIR`` and what it must hold) when nothing can load it.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}.")
    if dataset not in CLASS_NAMES:
        raise ValueError(f"dataset must be one of {tuple(CLASS_NAMES)}, not {dataset!r}.")
    with _load_lock:  # lru_cache alone would let two threads load the same split twice.
        return _load(split, dataset)


_load_lock = threading.Lock()
