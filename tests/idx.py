"""An independent read of the original MNIST-format files: gzip and numpy, no tfds, no ae_core.

The tests compare what the project loads with this, so that a loader which returns the wrong
dataset (as one once did) cannot pass by agreeing with itself.

>>> images, labels = read_idx_split(Path("../shared/fashion_mnist"), "test")   # doctest: +SKIP
>>> images.shape, images.dtype, labels[:3].tolist()                           # doctest: +SKIP
((10000, 28, 28), dtype('uint8'), [9, 2, 1])
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

FILE_PREFIX = {"train": "train", "test": "t10k"}


def source_folder(dataset: str) -> Path:
    """``$AE_DATA_DIR/<dataset>``: the folder of the four original .gz files."""
    root = os.environ.get("AE_DATA_DIR")
    if not root:
        raise RuntimeError("These tests read the original files: set AE_DATA_DIR (CI sets ../shared).")
    return Path(root).expanduser().resolve() / dataset


def _read_idx(path: Path) -> np.ndarray:
    """One idx file: a big-endian header (magic, then one uint32 per dimension), then uint8s."""
    with gzip.open(path, "rb") as file:
        data = file.read()
    magic = int.from_bytes(data[0:4], "big")
    assert magic >> 8 == 0x08, f"{path.name}: not an unsigned-byte idx file (magic {magic:#x})"
    dimensions = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dimensions)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dimensions).reshape(shape)


def read_idx_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, 28, 28), labels uint8 (N,))`` in the files' own order."""
    prefix = FILE_PREFIX[split]
    images = _read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = _read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
    assert len(images) == len(labels)
    return images, labels


def labelled_image_counts(images: np.ndarray, labels: np.ndarray) -> collections.Counter:
    """The split as a multiset of (image hash, label): equal whatever order the rows are in.

    ``images`` may be uint8 (N, 28, 28) or the loader's float32 in [0, 1] of any trailing shape.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = np.round(images * 255.0).astype(np.uint8)
    images = images.reshape(len(images), -1)
    return collections.Counter(
        (hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest(), int(label))
        for image, label in zip(images, np.asarray(labels)))
