"""How the "vae" and "umap" kinds train: their losses, and UMAP's graph of the training images.

Both wrap the encoder and decoder of ``model.build_autoencoder(kind=...)`` in a Keras model
whose ``train_step`` adds their own term to the reconstruction; the weights saved and
loaded are those of the encoder and decoder alone, so every kind loads, encodes and
decodes the same way (and the browser decodes every kind's decoder).

* **vae** (Kingma and Welling 2014): the encoder gives the mean and log-variance of
  q(z | image); training decodes ``z = mean + exp(log_var / 2) * eps`` (the
  reparameterisation trick) and minimises the summed per-image binary cross-entropy of
  the pixels plus ``beta`` times KL(q(z | image) || N(0, I)). Validation decodes the mean.
* **umap** (Parametric UMAP: Sainburg, McInnes and Gentner 2021): the per-pixel binary
  cross-entropy (as umap-learn's ``ParametricUMAP`` reconstructs; with MSE through the
  sigmoid, a linear 2-D latent can get stuck drawing black images from the first epoch) plus
  ``umap_weight`` times UMAP's cross-entropy between the fuzzy k-NN graph of the training
  images and the codes. Each step samples ``umap_edges`` edges of the graph by weight
  (the attractive pairs) and, for each, ``umap_negatives`` pairs made by shuffling the
  tails (the repulsive ones); a pair at distance d is a neighbour in the codes with
  probability ``q = 1 / (1 + a * d^(2b))``, a and b from ``umap.umap_.find_ab_params``.

The graph is built by umap-learn (``fuzzy_simplicial_set``, with pynndescent's
approximate neighbours), the library of the authors; docs/model.md says why. It is
cached in the run's work folder, keyed by the data, so a resumed run reads it back.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import keras
import numpy as np
import scipy.sparse
import tensorflow as tf

# The log of a probability is taken of at least this, as umap-learn does, so that a pair
# at distance 0 (or one pushed to infinity) gives a finite loss.
EPSILON = 1e-4
# umap-learn drops edges whose weight is below the largest over its epoch count (200 for
# large data): those would be sampled less than once in a whole run.
EDGE_EPOCHS = 200


def kl_divergence(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per code, summed over the latent dimensions."""
    return -0.5 * keras.ops.sum(1.0 + log_var - keras.ops.square(mean) - keras.ops.exp(log_var), axis=-1)


def summed_binary_crossentropy(images, reconstructions):
    """The pixels' binary cross-entropy summed over each image: -log p(image | z), shape (N,)."""
    reconstructions = keras.ops.clip(reconstructions, 1e-7, 1.0 - 1e-7)
    terms = images * keras.ops.log(reconstructions) + (1.0 - images) * keras.ops.log(1.0 - reconstructions)
    return -keras.ops.sum(keras.ops.reshape(terms, (keras.ops.shape(terms)[0], -1)), axis=-1)


def per_pixel_mse(images, reconstructions):
    return keras.ops.mean(keras.ops.square(images - reconstructions))


class _Trainer(keras.Model):
    """An ``encoder`` and ``decoder`` trained together, reporting the running means ``TRACKED``
    (Keras resets the trackers listed in ``metrics`` at each epoch)."""

    TRACKED: tuple[str, ...] = ()

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.TRACKED}

    @property
    def metrics(self):
        return list(self.trackers.values())


class VariationalTrainer(_Trainer):
    """Trains a variational ``encoder`` (``[mean, log_var]``) and ``decoder``.

    ``loss`` is the negative ELBO per image (BCE summed over pixels + beta * KL); the
    metrics also report its two parts and the per-pixel ``mse`` of decoding the mean.
    """

    TRACKED = ("loss", "reconstruction", "kl", "mse")

    def __init__(self, encoder, decoder, beta: float = 1.0, seed: int = 0, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        self.beta = float(beta)
        self.noise_seed = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        mean, _ = self.encoder(images, training=training)
        return self.decoder(mean, training=training)

    def _loss_terms(self, images, training: bool) -> dict:
        mean, log_var = self.encoder(images, training=training)
        z = mean
        if training:
            z = mean + keras.ops.exp(0.5 * log_var) * keras.random.normal(
                keras.ops.shape(mean), seed=self.noise_seed)
        reconstructions = self.decoder(z, training=training)
        reconstruction = keras.ops.mean(summed_binary_crossentropy(images, reconstructions))
        kl = keras.ops.mean(kl_divergence(mean, log_var))
        return {"loss": reconstruction + self.beta * kl, "reconstruction": reconstruction, "kl": kl,
                "mse": per_pixel_mse(images, reconstructions)}

    def train_step(self, data):
        images = data[0] if isinstance(data, tuple) else data
        with tf.GradientTape() as tape:
            losses = self._loss_terms(images, training=True)
        gradients = tape.gradient(losses["loss"], self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return _track(self.trackers, losses, images)

    def test_step(self, data):
        images = data[0] if isinstance(data, tuple) else data
        return _track(self.trackers, self._loss_terms(images, training=False), images)


def umap_cross_entropy(head_codes, tail_codes, negative_order, negatives: int, a: float, b: float,
                       negative_tails=None):
    """UMAP's cross-entropy over a batch of edges and their shuffled negative pairs.

    The edges (head, tail) should be neighbours (graph probability 1); each head repeated
    ``negatives`` times against the tails reordered by ``negative_order`` should not
    (probability 0). Mean over all pairs, as umap-learn's ``parametric_umap`` computes it.
    ``negative_tails`` (as many codes as heads), if given, stand in for the tails in the
    negative pairs: benchmarks/umap_encoder.py draws them uniformly, as non-parametric UMAP does.
    """
    negative_heads = keras.ops.repeat(head_codes, negatives, axis=0)
    negative_tails = keras.ops.take(keras.ops.repeat(tail_codes if negative_tails is None else negative_tails,
                                                     negatives, axis=0), negative_order, axis=0)
    # d^(2b) as (d^2)^b: the gradient of a norm at d = 0 is NaN, that of d^2 is 0.
    positive = _neighbour_probability(keras.ops.sum(keras.ops.square(head_codes - tail_codes), axis=-1), a, b)
    negative = _neighbour_probability(
        keras.ops.sum(keras.ops.square(negative_heads - negative_tails), axis=-1), a, b)
    attraction = -keras.ops.log(keras.ops.clip(positive, EPSILON, 1.0))
    repulsion = -keras.ops.log(keras.ops.clip(1.0 - negative, EPSILON, 1.0))
    return keras.ops.mean(keras.ops.concatenate([attraction, repulsion], axis=0))


def _neighbour_probability(squared_distances, a: float, b: float):
    return 1.0 / (1.0 + a * keras.ops.power(squared_distances + 1e-12, b))


class UmapTrainer(_Trainer):
    """Trains an ``encoder`` and ``decoder`` on per-pixel BCE + ``weight`` * UMAP's cross-entropy.

    Each training element is a dict of ``images`` (the reconstruction batch), ``heads`` and
    ``tails`` (the images at both ends of the sampled edges) and ``negative_order``
    (``UmapEdgeData`` makes them). Validation has no graph: its ``loss`` is the BCE.
    """

    TRACKED = ("loss", "reconstruction", "mse", "umap")

    def __init__(self, encoder, decoder, weight: float, a: float, b: float, negatives: int,
                 latent_noise: float = 0.0, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        self.weight, self.a, self.b, self.negatives = float(weight), float(a), float(b), int(negatives)
        self.noise = keras.layers.GaussianNoise(latent_noise) if latent_noise > 0 else None

    def call(self, images, training=False):
        return self.decoder(self.encoder(images, training=training), training=training)

    def train_step(self, data):
        images, heads, tails = data["images"], data["heads"], data["tails"]
        count, edges = keras.ops.shape(images)[0], keras.ops.shape(heads)[0]
        with tf.GradientTape() as tape:
            # One encoder call for all three: the same weights, and cheaper than three.
            codes = self.encoder(keras.ops.concatenate([images, heads, tails], axis=0), training=True)
            image_codes, head_codes, tail_codes = codes[:count], codes[count:count + edges], codes[count + edges:]
            if self.noise is not None:
                image_codes = self.noise(image_codes, training=True)
            reconstructions = self.decoder(image_codes, training=True)
            reconstruction = _per_pixel_binary_crossentropy(images, reconstructions)
            umap = umap_cross_entropy(head_codes, tail_codes, data["negative_order"], self.negatives,
                                      self.a, self.b)
            loss = reconstruction + self.weight * umap
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return _track(self.trackers, {"loss": loss, "reconstruction": reconstruction,
                                      "mse": per_pixel_mse(images, reconstructions), "umap": umap}, images)

    def test_step(self, data):
        images = data[0] if isinstance(data, tuple) else data
        reconstructions = self(images, training=False)
        reconstruction = _per_pixel_binary_crossentropy(images, reconstructions)
        return _track(self.trackers, {"loss": reconstruction, "reconstruction": reconstruction,
                                      "mse": per_pixel_mse(images, reconstructions)}, images)


def _track(trackers: dict, values: dict, images) -> dict:
    """Adds each batch's means to the epoch's, weighted by the batch's size: unweighted, the
    short last batch of the test set would count as much as a full one."""
    count = keras.ops.cast(keras.ops.shape(images)[0], "float32")
    for name, value in values.items():
        trackers[name].update_state(value, sample_weight=count)
    return {name: trackers[name].result() for name in values}


def _per_pixel_binary_crossentropy(images, reconstructions):
    return keras.ops.mean(summed_binary_crossentropy(images, reconstructions)) / float(np.prod(images.shape[1:]))


def umap_ab(min_dist: float) -> tuple[float, float]:
    """UMAP's a and b for ``min_dist`` (spread 1), as umap-learn fits them."""
    from umap.umap_ import find_ab_params

    a, b = find_ab_params(1.0, min_dist)
    return float(a), float(b)


def fuzzy_graph(images: np.ndarray, n_neighbors: int, seed: int,
                metric: str = "euclidean") -> scipy.sparse.coo_matrix:
    """UMAP's symmetric fuzzy k-NN graph of ``images`` (``metric`` on the raw pixels), by umap-learn.

    Row i holds the membership strengths of i's neighbours; i's nearest neighbour always
    has strength 1. Edges too weak to be sampled in a UMAP run are dropped, as umap-learn does.
    """
    from umap.umap_ import fuzzy_simplicial_set

    flat = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    graph, _, _ = fuzzy_simplicial_set(flat, n_neighbors, np.random.RandomState(seed), metric)
    graph = graph.tocoo()
    keep = graph.data >= graph.data.max() / EDGE_EPOCHS
    return scipy.sparse.coo_matrix((graph.data[keep], (graph.row[keep], graph.col[keep])), shape=graph.shape)


def cached_fuzzy_graph(images: np.ndarray, n_neighbors: int, metric: str, seed: int, folder: Path,
                       data_key: dict) -> tuple[scipy.sparse.coo_matrix, float]:
    """``(fuzzy_graph, seconds it took to build)``, read from ``folder`` when a run with the
    same data and settings built it.

    ``data_key`` (the data's fingerprint, the subset) and the settings name the file, so a
    resumed run reuses its graph and a run on other images never does.
    """
    key = json.dumps({**data_key, "images": len(images), "n_neighbors": n_neighbors, "metric": metric, "seed": seed},
                     sort_keys=True)
    path = Path(folder) / f"umap-graph-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as saved:
            return scipy.sparse.coo_matrix((saved["weights"], (saved["heads"], saved["tails"])),
                                           shape=(len(images), len(images))), float(saved["seconds"])
    started = time.perf_counter()
    graph = fuzzy_graph(images, n_neighbors, seed, metric)
    seconds = round(time.perf_counter() - started, 1)
    from .cards import write_atomically

    # Through an open file: np.savez would append ".npz" to the temporary name.
    def save(temporary: Path) -> None:
        with temporary.open("wb") as file:
            np.savez(file, weights=graph.data.astype(np.float32), heads=graph.row.astype(np.int32),
                     tails=graph.col.astype(np.int32), seconds=np.float64(seconds))

    write_atomically(path, save)
    return graph, seconds


class UmapEdgeData(keras.callbacks.Callback):
    """The UMAP kind's training data: each step, a batch of images in ``epoch_order`` plus
    edges sampled by weight and the order that shuffles their tails into negatives.

    Everything an epoch draws is a function of the seed and the epoch number, read at
    ``on_epoch_begin``, so a resumed epoch draws what the uninterrupted one did.
    """

    def __init__(self, images: np.ndarray, graph: scipy.sparse.coo_matrix, batch_size: int,
                 edges: int, negatives: int, seed: int):
        super().__init__()
        from .train import epoch_order  # The one definition of an epoch's order.

        self._epoch_order = epoch_order
        self.images, self.batch_size, self.edges, self.negatives, self.seed = images, batch_size, edges, negatives, seed
        self.heads, self.tails = graph.row.astype(np.int64), graph.col.astype(np.int64)
        weights = graph.data.astype(np.float64)  # Summed in float32, they miss 1 by more than choice allows.
        self.probabilities = weights / weights.sum()
        self.epoch = 0
        image_spec = tf.TensorSpec((None, *images.shape[1:]), tf.float32)
        signature = {"images": image_spec, "heads": image_spec, "tails": image_spec,
                     "negative_order": tf.TensorSpec((None,), tf.int32)}
        self.steps = -(-len(images) // batch_size)
        self.dataset = tf.data.Dataset.from_generator(self._batches, output_signature=signature).apply(
            tf.data.experimental.assert_cardinality(self.steps)).prefetch(2)

    def _batches(self):
        order = self._epoch_order(self.seed, self.epoch, len(self.images))
        rng = np.random.default_rng([self.seed, self.epoch, 1])
        edges = rng.choice(len(self.probabilities), size=(self.steps, self.edges), p=self.probabilities)
        for step, start in enumerate(range(0, len(order), self.batch_size)):
            chosen = edges[step]
            yield {"images": self.images[order[start:start + self.batch_size]],
                   "heads": self.images[self.heads[chosen]], "tails": self.images[self.tails[chosen]],
                   "negative_order": rng.permutation(self.edges * self.negatives).astype(np.int32)}

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch


def build_trainer(config, encoder, decoder, umap_ab_params: tuple[float, float] | None = None) -> keras.Model:
    """The Keras model that trains ``config.kind`` ("vae" or "umap") around ``encoder`` and ``decoder``."""
    if config.kind == "vae":
        return VariationalTrainer(encoder, decoder, beta=config.beta, seed=config.seed, name="vae_trainer")
    if config.kind == "umap":
        a, b = umap_ab_params or umap_ab(config.umap_min_dist)
        return UmapTrainer(encoder, decoder, config.umap_weight, a, b, config.umap_negatives,
                           config.latent_noise, name="umap_trainer")
    raise ValueError(f"build_trainer makes the vae and umap trainers; the {config.kind!r} kind "
                     f"trains as a plain Keras model (train.py).")
