"""ae_core: the data, model, training and inference behind the latent-space explorer.

Importing this package is cheap: TensorFlow is imported only when a model is built or
MNIST is loaded, so that a page can render its frame before that slow import finishes.

    import ae_core
    images, labels = ae_core.load_mnist("test")
    model = ae_core.load_autoencoder(latent_dim=2)
    z = model.encode(images)                 # (10000, 2)
    digit = ae_core.image_to_mnist(png_bytes) # (28, 28, 1)

This package never imports streamlit.
"""

import os

# TensorFlow's informational lines (dataset buffer sizes, CPU features) went into every
# server's log; its warnings and errors still show. Set before anything imports TensorFlow.
# (Its one oneDNN line is printed before this level is read; TF_ENABLE_ONEDNN_OPTS=0 would
# silence it, but at the cost of other numerics than the shipped weights were checked with.)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .config import TrainConfig  # noqa: E402
from .data import CLASS_NAMES, DataUnavailableError, load_mnist
from .mnist_recipe import DigitSteps, image_to_mnist, prepare_digit
from .cards import WeightsError, data_mismatch
from .inference import Autoencoder, available_kinds, available_models, load_autoencoder

__all__ = [
    "Autoencoder", "CLASS_NAMES", "available_kinds", "available_models", "DataUnavailableError", "DigitSteps", "TrainConfig",
    "WeightsError", "data_mismatch", "image_to_mnist", "load_autoencoder", "load_mnist", "prepare_digit",
]
