"""The trained autoencoder as a small numpy-in, numpy-out object.

>>> model = load_autoencoder(latent_dim=2)          # doctest: +SKIP
>>> z = model.encode(images[:3])                    # doctest: +SKIP
>>> z.shape, model.decode(z).shape                  # doctest: +SKIP
((3, 2), (3, 28, 28, 1))

Why not ``model.predict``: it builds a data pipeline on every call, which costs far more
than the arithmetic for one point (docs/performance.md). ``encode`` and ``decode`` run a
``tf.function`` traced once with a fixed input signature (any batch size), and they split
large inputs into chunks so that 60,000 images fit in bounded memory.

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

from .cards import WeightsError, checked_autoencoder, retrain_command, suggested_config
from .config import IMAGE_SHAPE, MODEL_KINDS, NAME_PATTERN, SHIPPED, WEIGHTS_DIR, TrainConfig, models_dir, weights_stem

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
        # Cards written before kinds existed are all of the plain autoencoder.
        self.kind = card.get("kind", "ae")
        self._encoder, self._decoder = encoder, decoder
        image_spec = tf.TensorSpec((None, *IMAGE_SHAPE), tf.float32)
        latent_spec = tf.TensorSpec((None, self.latent_dim), tf.float32)
        # get_concrete_function traces now, once; calling the concrete function later
        # skips tf.function's argument matching, which is most of the per-call cost.
        # A variational encoder gives [mean, log_var]; encode() returns the means.
        self._posterior_fn = None
        if self.kind == "vae":
            self._posterior_fn = tf.function(lambda x: tf.concat(encoder(x, training=False), axis=-1)
                                             ).get_concrete_function(image_spec)
            self._encode_fn = tf.function(lambda x: encoder(x, training=False)[0]
                                          ).get_concrete_function(image_spec)
        else:
            self._encode_fn = tf.function(lambda x: encoder(x, training=False)
                                          ).get_concrete_function(image_spec)
        self._decode_fn = tf.function(lambda z: decoder(z, training=False)
                                      ).get_concrete_function(latent_spec)
        self._tf = tf

    def encode(self, images: np.ndarray) -> np.ndarray:
        """Images (N, 28, 28, 1) or (N, 28, 28) in [0, 1] -> codes (N, latent_dim) float32.

        For the "vae" kind, the codes are the means of the posteriors."""
        return self._run(self._encode_fn, _as_images(images), ENCODE_CHUNK, (self.latent_dim,))

    def encode_posterior(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, log_var)``, each (N, latent_dim): the "vae" kind's posterior q(z | image),
        a normal with these means and variances ``exp(log_var)`` per coordinate (a 2-sigma
        ellipse has half-axes ``2 * exp(log_var / 2)``). Other kinds have no posterior."""
        if self._posterior_fn is None:
            raise ValueError(f"Only the vae kind has a posterior; this model is of kind {self.kind!r}, "
                             f"so use encode() for its codes.")
        both = self._run(self._posterior_fn, _as_images(images), ENCODE_CHUNK, (2 * self.latent_dim,))
        return both[:, : self.latent_dim], both[:, self.latent_dim:]

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
    def from_folder(cls, folder: Path | str, latent_dim: int = 2, dataset: str = "mnist", kind: str = "ae"
                    ) -> "Autoencoder":
        """Load ``<folder>/<weights_stem(latent_dim, dataset, kind)>.weights.h5`` after checking it."""
        from .model import build_autoencoder

        card, weights_path, fix = checked_autoencoder(folder, latent_dim, dataset, kind)
        recipe = TrainConfig.from_dict(card["config"])  # Sound: checked_autoencoder has built it once.
        autoencoder, encoder, decoder = build_autoencoder(latent_dim, recipe.latent, recipe.latent_scale,
                                                          kind=kind, encoder_hidden=recipe.encoder_hidden,
                                                          encoder_filters=recipe.encoder_filters)
        try:
            autoencoder.load_weights(str(weights_path))
        except Exception as error:  # h5py and Keras raise many kinds; all mean "unusable".
            raise WeightsError(f"The weights file {weights_path.name} could not be read "
                               f"({type(error).__name__}). {fix}") from error
        return cls(encoder, decoder, card)


def _as_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"encode expects images of shape (N, 28, 28, 1), got {images.shape}.")
    return images


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
def _load(latent_dim: int, dataset: str, folder: Path, kind: str) -> Autoencoder:
    return Autoencoder.from_folder(folder, latent_dim, dataset, kind)


def load_autoencoder(latent_dim: int = 2, dataset: str = "mnist", name: str = SHIPPED,
                     kind: str = "ae") -> Autoencoder:
    """A model loaded once per process: the shipped one, or the trained model ``name``, of
    ``kind`` "ae" (the plain autoencoder), "vae" or "umap" (``config.MODEL_KINDS``).

    Raises ``WeightsError`` with the retrain command when the file is missing or altered.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, not {kind!r}.")
    with _load_lock:  # Two threads asking at once must not build the model twice.
        return _load(latent_dim, dataset, model_folder(name), kind)


def available_kinds(dataset: str = "mnist", name: str = SHIPPED) -> tuple[str, ...]:
    """The kinds (``config.MODEL_KINDS``, in that order) whose 2-D card the model ``name`` has
    for ``dataset``; an unknown name has none."""
    try:
        folder = model_folder(name)
    except WeightsError:
        return ()
    return tuple(kind for kind in MODEL_KINDS if (folder / f"{weights_stem(2, dataset, kind)}.json").exists())


def kind_command(dataset: str, kind: str) -> str:
    """The command that trains the 2-D model of ``kind`` for ``dataset`` into ``weights/``."""
    return retrain_command(suggested_config(2, dataset, kind))


def available_models(dataset: str = "mnist") -> list[str]:
    """Names of the 2-D models for ``dataset`` (of any kind): "shipped" (when a card exists)
    first, then the models trained in the app, newest first. Unreadable folders are skipped."""
    stems = [weights_stem(2, dataset, kind) for kind in MODEL_KINDS]
    names = [SHIPPED] if any((WEIGHTS_DIR / f"{stem}.json").exists() for stem in stems) else []
    trained = []
    folder = models_dir()
    paths = [path for stem in stems for path in folder.glob(f"*/{stem}.json")] if folder.is_dir() else []
    for card_path in paths:
        if card_path.parent.name.startswith(".") or card_path.parent.name in [n for _, n in trained]:
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
