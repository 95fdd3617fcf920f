"""The trained autoencoder as a small numpy-in, numpy-out object.

>>> model = load_autoencoder(latent_dim=2)          # doctest: +SKIP
>>> z = model.encode(images[:3])                    # doctest: +SKIP
>>> z.shape, model.decode(z).shape                  # doctest: +SKIP
((3, 2), (3, 28, 28, 1))

Why not ``model.predict``: it builds a data pipeline on every call and costs about
100 ms for one point here. ``encode`` and ``decode`` run a ``tf.function`` traced once
with a fixed input signature (any batch size), which costs about 2 ms for one point,
and they split large inputs into chunks so that 60,000 images fit in bounded memory.

Weights are read from the project's ``weights/`` folder ("shipped") or from a model
trained in the app (a folder under ``models_dir()``), as weights-only ``.h5`` files
loaded into the architecture built in code (no model config, no Lambda, no pickle is
ever deserialised), after their SHA-256 matches the one in the model card.
"""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path

import numpy as np

from .cards import WeightsError, checked_weights_path, read_autoencoder_card, retrain_command
from .config import (IMAGE_SHAPE, LATENT_KINDS, NAME_PATTERN, SHIPPED, WEIGHTS_DIR, TrainConfig,
                     models_dir, weights_stem)

# Chunk sizes keep peak memory near 100 MB whatever N is (decoder activations are
# 28*28*32 floats per image; the encoder's are far smaller).
ENCODE_CHUNK = 4096
DECODE_CHUNK = 512


class Autoencoder:
    """A trained encoder/decoder pair with fast, batched numpy methods.

    Calls are safe from many threads: both functions are traced once here, and running a
    traced function does not mutate the model.
    """

    def __init__(self, encoder, decoder, card: dict):
        import tensorflow as tf

        self.card = card
        self.latent_dim = int(card["latent_dim"])
        self._encoder, self._decoder = encoder, decoder
        image_spec = tf.TensorSpec((None, *IMAGE_SHAPE), tf.float32)
        latent_spec = tf.TensorSpec((None, self.latent_dim), tf.float32)
        # get_concrete_function traces now, once; calling the concrete function later
        # skips tf.function's argument matching, which is most of the per-call cost.
        self._encode_fn = tf.function(lambda x: encoder(x, training=False)
                                      ).get_concrete_function(image_spec)
        self._decode_fn = tf.function(lambda z: decoder(z, training=False)
                                      ).get_concrete_function(latent_spec)
        self._tf = tf

    def encode(self, images: np.ndarray) -> np.ndarray:
        """Images (N, 28, 28, 1) or (N, 28, 28) in [0, 1] -> codes (N, latent_dim) float32."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3:
            images = images[..., np.newaxis]
        if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"encode expects images of shape (N, 28, 28, 1), got {images.shape}.")
        return self._run(self._encode_fn, images, ENCODE_CHUNK, (self.latent_dim,))

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Codes (N, latent_dim), or one code (latent_dim,) -> images (N, 28, 28, 1) in [0, 1]."""
        z = np.atleast_2d(np.asarray(z, dtype=np.float32))
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"decode expects codes of shape (N, {self.latent_dim}), got {z.shape}.")
        if not np.all(np.isfinite(z)):
            raise ValueError("decode expects finite codes; got NaN or infinity.")
        return self._run(self._decode_fn, z, DECODE_CHUNK, IMAGE_SHAPE)

    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        """decode(encode(images)): the model's copy of each image."""
        return self.decode(self.encode(images))

    def _run(self, function, inputs: np.ndarray, chunk: int, out_shape: tuple) -> np.ndarray:
        if len(inputs) <= chunk:  # The common case, one small call: no extra copy.
            return function(self._tf.constant(inputs)).numpy()
        out = np.empty((len(inputs), *out_shape), dtype=np.float32)
        for start in range(0, len(inputs), chunk):
            out[start:start + chunk] = function(self._tf.constant(inputs[start:start + chunk])).numpy()
        return out

    @classmethod
    def from_folder(cls, folder: Path | str, latent_dim: int = 2, dataset: str = "mnist"
                    ) -> "Autoencoder":
        """Load ``<folder>/autoencoder_<dataset>_z<latent_dim>.weights.h5`` after checking it."""
        from .model import build_autoencoder

        folder = Path(folder)
        name = weights_stem(latent_dim, dataset)
        fix = ("Retrain them with: "
               + retrain_command(TrainConfig(latent_dim=latent_dim, dataset=dataset)))
        card = read_autoencoder_card(folder, name, fix)
        # The card knows the exact recipe of its weights; quote that when it is there.
        if isinstance(card.get("retrain_command"), str):
            fix = f"Retrain them with: {card['retrain_command']}"
        weights_path = checked_weights_path(folder, card, fix)
        recipe = card.get("config")
        if not isinstance(recipe, dict) or recipe.get("latent") not in LATENT_KINDS:
            # Guessing the architecture would load the numbers into the wrong layers.
            raise WeightsError(f"The model card of {name} does not say how its latent was built. {fix}")
        autoencoder, encoder, decoder = build_autoencoder(
            latent_dim, recipe["latent"], float(recipe.get("latent_scale", TrainConfig.latent_scale)))
        try:
            autoencoder.load_weights(str(weights_path))
        except Exception as error:  # h5py and Keras raise many kinds; all mean "unusable".
            raise WeightsError(f"The weights file {weights_path.name} could not be read "
                               f"({type(error).__name__}). {fix}") from error
        return cls(encoder, decoder, card)


_load_lock = threading.Lock()


def model_folder(name: str = SHIPPED) -> Path:
    """``weights/`` for the shipped models, else that trained model's own folder.

    A name is never a path: anything but a plain model name is refused, so a name taken
    from a URL cannot reach a file outside the models folder.
    """
    if name == SHIPPED:
        return WEIGHTS_DIR
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise WeightsError(f"There is no model called {name!r}; choose one listed in the sidebar.")
    return models_dir() / name


@functools.lru_cache(maxsize=16)
def _load(latent_dim: int, dataset: str, folder: Path) -> Autoencoder:
    return Autoencoder.from_folder(folder, latent_dim, dataset)


def load_autoencoder(latent_dim: int = 2, dataset: str = "mnist", name: str = SHIPPED) -> Autoencoder:
    """A model loaded once per process: the shipped one, or the trained model ``name``.

    Raises ``WeightsError`` with the retrain command when the file is missing or altered.
    """
    with _load_lock:  # Two threads asking at once must not build the model twice.
        return _load(latent_dim, dataset, model_folder(name))


def available_models(dataset: str = "mnist") -> list[str]:
    """Names of the 2-D models for ``dataset``: "shipped" (when its card exists) first,
    then the models trained in the app, newest first. Unreadable folders are skipped."""
    stem = weights_stem(2, dataset)
    names = [SHIPPED] if (WEIGHTS_DIR / f"{stem}.json").exists() else []
    trained = []
    folder = models_dir()
    for card_path in folder.glob(f"*/{stem}.json") if folder.is_dir() else []:
        if card_path.parent.name.startswith("."):
            continue  # A run still being written (.staging-<name>), not a model yet.
        try:
            date = json.loads(card_path.read_text()).get("date", "")
        except (OSError, ValueError):
            continue
        trained.append((str(date), card_path.parent.name))
    return names + [name for _, name in sorted(trained, reverse=True)]


def load_formation(dataset: str = "mnist", name: str = SHIPPED) -> dict[str, np.ndarray] | None:
    """The per-epoch codes a run recorded (``--formation-sample``), or None if it has none.

    Returns ``{"codes": (epochs, N, 2), "labels": (N,), "val_loss": (epochs,)}``.
    """
    folder = model_folder(name)
    path = folder / f"{weights_stem(2, dataset)}.formation.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:  # Plain arrays only; no pickle is run.
        return {key: data[key] for key in ("codes", "labels", "val_loss")}
