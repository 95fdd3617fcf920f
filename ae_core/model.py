"""The article's convolutional autoencoder, as Keras Functional models.

Encoder: four 3x3 convolutions with 8 filters (strides 2, 1, 2, 1), Flatten, Dense(z).
Decoder: Dense(7*7*64), Reshape, Conv 64, UpSampling, Conv 32, UpSampling, Conv 1 sigmoid.

What we changed from the article's code, and why:

* **The latent is linear, batch-normalised, then bent into the window.** The article puts
  a ReLU on Dense(z), which folds every code into the positive quadrant (and kills whole
  dimensions when a unit dies), leaving three quarters of the [-5, 5]^2 window the app
  explores empty. A plain Dense has no such bias, but its scale drifts freely. A
  ``BatchNormalization`` without learned centre or scale pins each coordinate to mean 0
  and std 1; ``SquashToWindow`` then maps it by ``5 * tanh(2.0 * x / 5)``: a slope of 2
  near the centre, which gives the look-alike classes 3, 5 and 8 room there, and a smooth
  bend that keeps every code inside (-5, 5). docs/model.md's tables compare this with the
  alternatives we measured (ReLU, batch norm alone, a fixed std, other slopes, a uniform
  squash, noise).
  The 10-D model, which is only decoded from its own codes, keeps a plain linear latent.
* **The shipped 2-D models add one Dense(128, relu) after Flatten** (``encoder_hidden``,
  in every kind). One linear map from the conv features to the plane cannot pull the
  classes apart as the UMAP loss asks; with the layer the UMAP-AE's 5-NN rose from 73.7% to
  92.0% on MNIST, and the AE and VAE beside it reconstruct better too (docs/model.md).
  They also have 16 filters a convolution (``encoder_filters``; the article's
  8 stay the default, and the 10-D models keep them): the UMAP loss needed the width
  (MNIST's UMAP-AE went from 92.0% to 96.8%), and the kinds should share one body.
* **The decoder has its own input.** The article wires the decoder to the encoder's
  input tensor, so it can never be called on a free z; here it is a separate model.
* The article's undefined ``x`` and ``compile(lr=...)`` are fixed in ``train.py``, and
  the labels it threw away are kept by ``data.load_mnist``.

>>> autoencoder, encoder, decoder = build_autoencoder(latent_dim=2)   # doctest: +SKIP
>>> encoder.output_shape, decoder.output_shape                         # doctest: +SKIP
((None, 2), (None, 28, 28, 1))
"""

from __future__ import annotations

import math

import keras
from keras import layers

from .config import IMAGE_SHAPE, LATENT_KINDS, MODEL_KINDS, WINDOW


@keras.saving.register_keras_serializable(package="ae_core")
class SquashToWindow(layers.Layer):
    """Maps a standardised coordinate x smoothly into (-half_width, half_width).

    ``"tanh"``: ``half_width * tanh(slope * x / half_width)``, which is ``slope * x`` near 0
    (room for the crowded middle) and bends towards the edge, so no code leaves the window.
    ``"erf"``: ``half_width * erf(x / sqrt(2))``, the normal CDF, which makes a standard
    normal x uniform over the window (``slope`` unused).
    """

    def __init__(self, half_width: float = WINDOW[1], slope: float = 2.0, function: str = "tanh", **kwargs):
        super().__init__(**kwargs)
        if function not in ("tanh", "erf"):
            raise ValueError(f"function must be 'tanh' or 'erf', not {function!r}.")
        self.half_width, self.slope, self.function = half_width, slope, function

    def call(self, x):
        if self.function == "erf":
            return self.half_width * keras.ops.erf(x / math.sqrt(2.0))
        return self.half_width * keras.ops.tanh(self.slope * x / self.half_width)

    def get_config(self) -> dict:
        return {**super().get_config(), "half_width": self.half_width, "slope": self.slope,
                "function": self.function}


def _encoder_body(images, hidden: int = 0, filters: int = 8):
    """The article's conv body, shared by every kind: four 3x3 convolutions, then Flatten.

    ``hidden`` > 0 adds a Dense(hidden, relu) after Flatten: one linear map from the conv
    features to the plane cannot pull classes apart as UMAP's loss asks (docs/model.md).
    ``filters`` per convolution: the article's 8 leave too few features for the UMAP loss
    to pull MNIST's classes apart (``benchmarks.umap_encoder``: 82.4% 5-NN, 88.9% with 16).
    """
    x = images
    for index, strides in enumerate((2, 1, 2, 1)):
        x = layers.Conv2D(filters, 3, strides=strides, padding="same", activation="relu",
                          name=f"encoder_conv{index + 1}")(x)
    x = layers.Flatten(name="encoder_flatten")(x)
    return layers.Dense(hidden, activation="relu", name="encoder_hidden")(x) if hidden else x


def build_variational_encoder(latent_dim: int, hidden: int = 0, filters: int = 8) -> keras.Model:
    """Image -> ``[mean, log_var]`` of the posterior q(z | image), two Dense(latent_dim) heads
    on the shared conv body. The mean head keeps the name ``encoder_dense``."""
    images = keras.Input(shape=IMAGE_SHAPE, name="image")
    x = _encoder_body(images, hidden, filters)
    mean = layers.Dense(latent_dim, name="encoder_dense")(x)
    log_var = layers.Dense(latent_dim, name="encoder_log_var")(x)
    return keras.Model(images, [mean, log_var], name="encoder")


def build_encoder(latent_dim: int, latent: str = "window", latent_scale: float = 2.0,
                  hidden: int = 0, filters: int = 8) -> keras.Model:
    """Image (28, 28, 1) in [0, 1] -> code z of shape (latent_dim,).

    ``latent`` chooses what follows Dense(latent_dim); docs/model.md compares them:
    "relu" (the article's), "linear", "batchnorm" (Keras's default batch norm, which learns
    its own centre and scale), "normalised" (batch norm pinned to std ``latent_scale``),
    "uniform" (batch norm, then the normal CDF onto (-5, 5)), "window" (batch norm, then
    a tanh of slope ``latent_scale`` that bends into (-5, 5)). See ``SquashToWindow``.
    ``hidden`` and ``filters`` are ``_encoder_body``'s.
    """
    if latent not in LATENT_KINDS:
        raise ValueError(f"latent must be one of {LATENT_KINDS}, not {latent!r}.")
    images = keras.Input(shape=IMAGE_SHAPE, name="image")
    x = _encoder_body(images, hidden, filters)
    x = layers.Dense(latent_dim, activation="relu" if latent == "relu" else None,
                     name="encoder_dense")(x)
    if latent == "batchnorm":
        x = layers.BatchNormalization(name="latent_norm")(x)
    elif latent in ("normalised", "uniform", "window"):
        x = layers.BatchNormalization(center=False, scale=False, name="latent_norm")(x)
    if latent == "normalised":
        x = layers.Rescaling(latent_scale, name="latent_scale")(x)
    elif latent == "uniform":
        x = SquashToWindow(WINDOW[1], function="erf", name="latent_uniform")(x)
    elif latent == "window":
        x = SquashToWindow(WINDOW[1], slope=latent_scale, function="tanh", name="latent_window")(x)
    z = layers.Identity(name="latent")(x)
    return keras.Model(images, z, name="encoder")


def build_decoder(latent_dim: int) -> keras.Model:
    """Code z of shape (latent_dim,) -> image (28, 28, 1) in [0, 1]."""
    z = keras.Input(shape=(latent_dim,), name="z")
    x = layers.Dense(7 * 7 * 64, activation="relu", name="decoder_dense")(z)
    x = layers.Reshape((7, 7, 64), name="decoder_reshape")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="decoder_conv1")(x)
    x = layers.UpSampling2D(2, name="decoder_up1")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="decoder_conv2")(x)
    x = layers.UpSampling2D(2, name="decoder_up2")(x)
    images = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="decoder_out")(x)
    return keras.Model(z, images, name="decoder")


def build_autoencoder(latent_dim: int = 2, latent: str = "window", latent_scale: float = 2.0,
                      latent_noise: float = 0.0, kind: str = "ae", encoder_hidden: int = 0,
                      encoder_filters: int = 8) -> tuple[keras.Model, keras.Model, keras.Model]:
    """Return ``(autoencoder, encoder, decoder)``; the autoencoder shares their layers.

    ``latent_noise`` > 0 adds Gaussian noise of that std to z between encoder and decoder,
    in training only: the decoder must then draw a whole neighbourhood of each code well,
    which keeps classes apart and the decoded plane sharp between them.

    ``kind`` "vae" gives an encoder with two outputs, ``[mean, log_var]``, and an
    autoencoder that decodes the mean; "umap" is built like "ae" (its extra loss lives in
    ``ae_core.kinds``). These are the models whose weights are saved and loaded; training
    the "vae" and "umap" kinds wraps the same encoder and decoder (``kinds.build_trainer``).
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, not {kind!r}.")
    decoder = build_decoder(latent_dim)
    images = keras.Input(shape=IMAGE_SHAPE, name="image")
    if kind == "vae":
        encoder = build_variational_encoder(latent_dim, encoder_hidden, encoder_filters)
        mean, _ = encoder(images)
        return keras.Model(images, decoder(mean), name="autoencoder"), encoder, decoder
    encoder = build_encoder(latent_dim, latent, latent_scale, encoder_hidden, encoder_filters)
    z = encoder(images)
    if latent_noise > 0:
        z = layers.GaussianNoise(latent_noise, name="latent_noise")(z)
    autoencoder = keras.Model(images, decoder(z), name="autoencoder")
    return autoencoder, encoder, decoder
