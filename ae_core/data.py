"""MNIST (and Fashion-MNIST) as numpy arrays, loaded through tensorflow-datasets.

Two ways in, in this order:

1. ``AE_DATA_DIR`` is set: tfds builds the dataset offline from the four original
   ``.gz`` files in ``$AE_DATA_DIR/<dataset>/`` (its ``manual_dir``) and verifies their
   checksums. This is how CI and the tests run, since they have no internet.
2. Otherwise tfds downloads as usual, which is what a user's online machine does.

Either way tfds keeps a prepared copy under its data dir (``TFDS_DATA_DIR`` or
``~/tensorflow_datasets``) and later loads read that copy without the network.

**Each dataset is private.** MNIST and Fashion-MNIST ship files with the same four names,
and tfds extracts manual files to ``<downloads>/extracted/GZIP.<file name>``: with one
shared downloads folder, whichever dataset was built second silently reused the first
one's images. So each dataset downloads and extracts into ``<data dir>/downloads/<dataset>/``,
and every split is checked against the fingerprint of the original files
(``FINGERPRINTS``). A prepared copy that does not match, such as one an earlier version
built from the other dataset's files, is rebuilt from the right files, or refused with
the fix when they cannot be had. It is never used.

Offline with neither source, a tfds download retries for minutes before it fails, so we
look for the files first and fail at once with a message that says how to fix it:

>>> images, labels = load_mnist("test")          # doctest: +SKIP
>>> images.shape, images.dtype, labels[:5]        # doctest: +SKIP
((10000, 28, 28, 1), dtype('float32'), array([2, 0, 4, 8, 7]))
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import hashlib
import os
import socket
import threading
from pathlib import Path

import numpy as np

from .datasets import SOURCE_FILES, TABLE
from .folders import folder_lock

DATA_DIR_VARIABLE = "AE_DATA_DIR"
SPLITS = ("train", "test")

# Human-readable class names, used by the app's legend.
CLASS_NAMES = {dataset.name: dataset.class_names for dataset in TABLE}

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


# Each split as the original files hold it, whatever the order: ``split_fingerprint`` of the
# four .gz files of each dataset (tests/test_data.py recomputes these from the files).
FINGERPRINTS = {
    ("mnist", "train"): "3655811c0e1223700a4714a92a51f55bd215ed7dc1fa2baa4326a2b58042d82d",
    ("mnist", "test"): "634538fb34c5277fce98470b8b285d1e8419eb87f328da42ef1faf690d2c3911",
    ("fashion_mnist", "train"): "0c69d5cdeb902b69084012f812f066de080317bb3c64f43ca87f910d8ec86906",
    ("fashion_mnist", "test"): "90c92c0507755a7d443edde8297ce4d0f131e42884e2e87e7fc9b81ffe215258",
}


def split_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """A SHA-256 of a split's (label, image) pairs that does not depend on their order.

    Each example is hashed as its label byte followed by its 784 uint8 pixels; the sorted
    digests are hashed once more. tfds stores examples in an order of its own, so order
    must not count, but every image and the label beside it must.

    >>> blank, ink = np.zeros((28, 28), np.uint8), np.full((28, 28), 255, np.uint8)
    >>> one_order = split_fingerprint(np.stack([blank, ink]), np.array([0, 1]))
    >>> one_order == split_fingerprint(np.stack([ink, blank]), np.array([1, 0]))
    True
    >>> one_order == split_fingerprint(np.stack([blank, ink]), np.array([1, 0]))
    False
    """
    images = np.asarray(images, dtype=np.uint8).reshape(len(images), -1)
    digests = sorted(hashlib.sha256(bytes([int(label)]) + image.tobytes()).digest()
                     for image, label in zip(images, np.asarray(labels)))
    return hashlib.sha256(b"".join(digests)).hexdigest()


_lazy_imports_lock = threading.Lock()


def import_tfds():
    """tensorflow-datasets, imported so that its lazy imports cannot break other threads.

    tfds imports many modules inside ``etils.epy.lazy_imports()``, which swaps
    ``builtins.__import__`` for the whole process while it runs: an ``import`` statement
    that any other thread runs meanwhile gets a placeholder instead of the module. In the
    server, Streamlit's request handler imports inside its functions, so a page asked for
    while tfds was loading in the background failed (``ModuleNotFoundError: No module named
    'streamlit.runtime.RuntimeState'``) and never drew. So before tfds is imported, the swap
    is made to apply only in the thread that asked for it.
    """
    _thread_local_lazy_imports()
    import tensorflow_datasets as tfds

    return tfds


def _thread_local_lazy_imports() -> None:
    """Make ``etils.epy.lazy_imports`` affect only the thread inside it (once per process)."""
    from etils import epy
    from etils.epy import lazy_imports_utils

    with _lazy_imports_lock:
        if getattr(epy.lazy_imports, "thread_local", False):
            return
        inside = threading.local()  # .importer: the lazy import of this thread, while inside
        usual = builtins.__import__

        def dispatch(name, globals=None, locals=None, fromlist=(), level=0):
            importer = getattr(inside, "importer", None) or usual
            return importer(name, globals, locals, fromlist, level)

        @contextlib.contextmanager
        def lazy_imports(*, error_callback=None, success_callback=None):
            outer = getattr(inside, "importer", None)
            inside.importer = functools.partial(lazy_imports_utils._lazy_import, error_callback=error_callback,
                                                success_callback=success_callback)
            try:
                yield
            finally:
                inside.importer = outer

        lazy_imports.thread_local = True
        builtins.__import__ = dispatch
        epy.lazy_imports = lazy_imports_utils.lazy_imports = lazy_imports


def data_fingerprints(dataset: str) -> dict[str, str]:
    """What a model card records of the data it saw: ``{"train": ..., "test": ...}``."""
    return {split: FINGERPRINTS[(dataset, split)] for split in SPLITS}


def _prepare(dataset: str, data_dir: str | None, rebuild: bool) -> None:
    """Build the prepared copy from this dataset's own files, in its own downloads folder."""
    tfds = import_tfds()  # Here, not at the top: it pulls in TensorFlow, which is slow.
    builder = tfds.builder(dataset, data_dir=data_dir)
    root = Path(builder.data_dir_root)
    root.mkdir(parents=True, exist_ok=True)
    with folder_lock(root):  # One build at a time, whichever server asks.
        if builder.is_prepared() and not rebuild:
            return  # Another process built it while this one waited.
        manual_dir = _manual_dir(dataset)
        if manual_dir is None and not _online():
            state = "holds other images than the original files" if rebuild else "is not prepared yet"
            raise DataUnavailableError(
                f"Cannot load '{dataset}': its copy in {builder.data_dir} {state}, "
                f"{DATA_DIR_VARIABLE} is not set and the download server is unreachable. "
                + _fix_hint(dataset))
        downloads = root / "downloads" / dataset
        mode = tfds.download.GenerateMode
        tfds.disable_progress_bar()  # Its bars, redrawn for local files, filled a server's log.
        builder.download_and_prepare(
            download_dir=str(downloads),
            download_config=tfds.download.DownloadConfig(
                manual_dir=str(manual_dir) if manual_dir else None,
                extract_dir=str(downloads / "extracted"),
                # A rebuild extracts again and overwrites the prepared copy it distrusts.
                download_mode=mode.FORCE_REDOWNLOAD if rebuild else mode.REUSE_DATASET_IF_EXISTS))


def _read(dataset: str, split: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    tfds = import_tfds()
    builder = tfds.builder(dataset, data_dir=data_dir)  # Fresh: it reads the prepared info.
    return tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))


@functools.lru_cache(maxsize=None)
def _load(split: str, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    tfds = import_tfds()
    data_dir = os.environ.get("TFDS_DATA_DIR") or None
    if not tfds.builder(dataset, data_dir=data_dir).is_prepared():
        _prepare(dataset, data_dir, rebuild=False)
    images, labels = _read(dataset, split, data_dir)
    if split_fingerprint(images, labels) != FINGERPRINTS[(dataset, split)]:
        # Never use a copy built from other files: rebuild it from this dataset's own.
        _prepare(dataset, data_dir, rebuild=True)
        images, labels = _read(dataset, split, data_dir)
        if split_fingerprint(images, labels) != FINGERPRINTS[(dataset, split)]:
            raise DataUnavailableError(
                f"The files tensorflow-datasets read for '{dataset}' are not the original "
                f"{dataset} files, so it was not loaded. " + _fix_hint(dataset))
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
