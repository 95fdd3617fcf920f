"""What a model and a dataset give every page view, kept on disk so that a restart reads it
without TensorFlow, and files named by their content that any replica can serve.

Two folders under ``cache_dir()`` (``$AE_CACHE_DIR``, else ``<repo>/.cache``):

* ``derived/<key>/``: numpy arrays and bytes computed from one model on its dataset's test
  split: the codes, labels and reconstruction errors of the 10,000 test images, and the
  decoder bundle (``ae_core.export``). ``key`` is a SHA-256 of the weights' SHA-256 (from
  the model card, itself checked against the file), the test split's fingerprint and
  ``FORMAT``, so new weights or other data never read an old entry.
* ``assets/<sha256 prefix>.<ext>``: immutable blobs (the decoder bundle, the map's points,
  PNG pictures, the live views' scripts) named by the SHA-256 of their bytes, for ``ui/server.py`` to serve with a
  year-long cache lifetime.

Every file is written to a temporary name and renamed, so a reader never sees half of one
and two servers writing the same entry at once both end with the same whole file.

    >>> put_asset(b"hello", "bin")                                   # doctest: +SKIP
    '2cf24dba5fb0a30e26e83b2ac5b9e29e.bin'
    >>> asset_path("../weights/autoencoder_mnist_z2.json"), asset_path("2cf24dba.BIN")
    (None, None)
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import framing
from .cards import checked_autoencoder, write_atomically
from .config import SHIPPED
from .data import FINGERPRINTS, import_tfds

FORMAT = 2  # Raise it when what is derived, or how it is stored, changes.
ASSET_TYPES = {"bin": "application/octet-stream", "png": "image/png", "js": "text/javascript"}
ASSET_NAME = re.compile(r"^[0-9a-f]{32}\.(bin|png|js)$")
ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    return Path(os.environ.get("AE_CACHE_DIR") or ROOT / ".cache")


_tensorflow_lock = threading.Lock()


def import_tensorflow() -> None:
    """Import TensorFlow and tensorflow-datasets (``data.import_tfds``) in one thread at a time.

    Whoever loads a model or the data calls this first (a page, and the loading in the
    background that ``ui/warmup.py`` starts), so that one of them imports while the other
    waits; once imported, it returns at once.
    """
    with _tensorflow_lock:
        import tensorflow  # noqa: F401

        import_tfds()


# --- Immutable assets ------------------------------------------------------------------------

def put_asset(data: bytes, extension: str) -> str:
    """Store ``data`` under the name its content gives it, and return that name."""
    if extension not in ASSET_TYPES:
        raise ValueError(f"An asset is one of {sorted(ASSET_TYPES)}, not {extension!r}.")
    name = f"{hashlib.sha256(data).hexdigest()[:32]}.{extension}"
    path = cache_dir() / "assets" / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda temporary: temporary.write_bytes(data))
    return name


def asset_path(name: str) -> Path | None:
    """The stored file of an asset's name, or None for a name that is malformed or unknown."""
    if not isinstance(name, str) or not ASSET_NAME.match(name):
        return None  # Only hex and one known ending: a name can never leave the folder.
    path = cache_dir() / "assets" / name
    return path if path.is_file() else None


# --- What a model derives from its test split -------------------------------------------------

@dataclass(frozen=True)
class MapData:
    """The 10,000 test images as the map shows them, and the decoder the browser runs."""
    latents: np.ndarray  # (N, 2) float32
    labels: np.ndarray  # (N,) int64
    errors: np.ndarray  # (N,) float32, mean squared error of each image's reconstruction
    bundle: bytes  # ae_core.export.decoder_bundle


def checked_card(latent_dim: int, dataset: str, name: str = SHIPPED, kind: str = "ae") -> dict:
    """A model's card after the checks ``Autoencoder.from_folder`` makes before it builds the
    model (``cards.checked_autoencoder``), without importing TensorFlow. Raises
    ``WeightsError`` with the retrain command."""
    from .inference import model_folder  # Cheap: inference imports TensorFlow only when loading.

    return checked_autoencoder(model_folder(name), latent_dim, dataset, kind)[0]


def derived_key(dataset: str, *cards: dict) -> str:
    """The folder name of what ``cards``' models derive from ``dataset``'s test split."""
    parts = [str(FORMAT), FINGERPRINTS[(dataset, "test")], *(card["sha256"] for card in cards)]
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:32]


def derived_folder(dataset: str, *cards: dict) -> Path:
    """Where what ``cards``' models derive from ``dataset``'s test split is kept."""
    return cache_dir() / "derived" / derived_key(dataset, *cards)


def map_data(dataset: str, name: str = SHIPPED, kind: str = "ae") -> MapData:
    """The 2-D model ``name``'s ``MapData`` on ``dataset``: read from disk when a server or
    its training computed it before (no TensorFlow), else computed with TensorFlow and kept."""
    folder = derived_folder(dataset, checked_card(2, dataset, name, kind))
    try:
        with np.load(folder / "map.npz", allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in ("latents", "labels", "errors")}
        bundle = (folder / "decoder.bin").read_bytes()
    except (OSError, ValueError, KeyError):
        from .inference import load_autoencoder

        import_tensorflow()
        return derive_map_data(load_autoencoder(2, dataset, name, kind), dataset)
    return _read_only(MapData(arrays["latents"], arrays["labels"].astype(np.int64), arrays["errors"], bundle))


def derive_map_data(model, dataset: str) -> MapData:
    """Compute the ``MapData`` of ``model`` (a loaded 2-D ``Autoencoder``) on ``dataset``, keep
    it in ``derived/``, and put the map's points and decoder bundle in ``assets/``: all that
    the map's first view of the model reads. A training calls it as soon as its model is
    saved (``ae_core.train``), so that the model's first view encodes nothing."""
    from .data import load_mnist
    from .explore import reconstruction_errors
    from .export import decoder_bundle

    images, labels = load_mnist("test", dataset)
    data = MapData(model.encode(images), np.asarray(labels, dtype=np.int64),
                   reconstruction_errors(model, images).astype(np.float32), decoder_bundle(model))
    folder = derived_folder(dataset, model.card)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, latents=data.latents, labels=data.labels.astype(np.uint8), errors=data.errors)
    write_atomically(folder / "decoder.bin", lambda temporary: temporary.write_bytes(data.bundle))
    # The arrays last: their file is what a reader looks for first.
    write_atomically(folder / "map.npz", lambda temporary: temporary.write_bytes(buffer.getvalue()))
    put_asset(points_blob(data), "bin")
    put_asset(data.bundle, "bin")
    return _read_only(data)


def _read_only(data: MapData) -> MapData:
    for array in (data.latents, data.labels, data.errors):
        array.setflags(write=False)  # Shared by every session of the process.
    return data


def kept(dataset: str, cards: tuple[dict, ...], file_name: str, make) -> np.ndarray:
    """An array derived from the models of ``cards`` on ``dataset``: read from
    ``derived/<key>/<file_name>.npy`` when present, else ``make()``, kept there."""
    path = derived_folder(dataset, *cards) / f"{file_name}.npy"
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        array = np.asarray(make())
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda temporary: np.save(temporary, array, allow_pickle=False))
    array.setflags(write=False)
    return array


# --- The map's points as one asset -------------------------------------------------------------

def points_blob(data: MapData) -> bytes:
    """The map's points for the browser (``ui/live/common.js pointsAt``), in ``framing``'s
    layout: a JSON header, then each array.

    The header names each array's ``offset`` from the first array and its ``dtype``, and
    ``count``: ``z1``, ``z2``, ``error`` float32, ``index`` int32 (the test index, which a
    click or selection reports), ``label`` uint8.
    """
    count = len(data.labels)
    arrays = {"z1": data.latents[:, 0].astype("<f4"), "z2": data.latents[:, 1].astype("<f4"),
              "error": data.errors.astype("<f4"), "index": np.arange(count, dtype="<i4"),
              "label": data.labels.astype(np.uint8)}
    header = {"format": FORMAT, "count": count, "arrays": {}}
    offset = 0
    for key, array in arrays.items():
        header["arrays"][key] = {"offset": offset, "dtype": array.dtype.name}
        offset += array.nbytes
    return framing.pack(header, *(array.tobytes() for array in arrays.values()))


def read_points(blob: bytes) -> dict[str, np.ndarray]:
    """``points_blob``'s arrays, as the browser reads them."""
    header, start = framing.unpack(blob)
    return {key: np.frombuffer(blob, dtype=spec["dtype"], count=header["count"], offset=start + spec["offset"])
            for key, spec in header["arrays"].items()}
