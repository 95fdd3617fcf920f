"""Every setting of the model and of its training, in one frozen dataclass.

The defaults are the recipe of the shipped MNIST weights (their card adds the seed, 2,
and the epoch cap, 40); ``python -m ae_core.train`` exposes each field as a flag.
Changing a default here changes what ``weights/`` should hold, so the model card written
beside the weights records the full config that produced them.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

# The project's shipped weights, next to the package. Nothing the app does writes here.
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def models_dir() -> Path:
    """Where models trained from the browser are saved, one folder each: ``$AE_MODELS_DIR``,
    else ``trained/`` beside ``weights/``. Read on every call, so tests can point it elsewhere."""
    return Path(os.environ.get("AE_MODELS_DIR") or WEIGHTS_DIR.parent / "trained")


SHIPPED = "shipped"  # The model name under which pages list the weights in weights/.
# A trained model's name is its folder's name, never a path: no '/', no '.', no leading '-'.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")

IMAGE_SHAPE = (28, 28, 1)

# What may follow Dense(z) in the encoder; ae_core/model.py builds each, README compares them.
LATENT_KINDS = ("relu", "linear", "batchnorm", "normalised", "uniform", "window")


@dataclass(frozen=True)
class TrainConfig:
    latent_dim: int = 2  # Size of the code z. 2 for the explorable map, 10 to compare reconstructions.
    dataset: str = "mnist"  # A tfds name: "mnist" or "fashion_mnist".
    epochs: int = 50  # Upper bound; EarlyStopping usually ends the run sooner.
    batch_size: int = 128  # The article's batch size.
    optimizer: str = "adam"  # "adam" or "rmsprop" (the article's). Adam converges faster here; see README.
    learning_rate: float = 1e-3  # Start value; ReduceLROnPlateau halves it when val_loss stalls.
    patience: int = 5  # EarlyStopping patience in epochs, as in the article.
    lr_patience: int = 3  # Epochs without progress before ReduceLROnPlateau halves the rate.
    seed: int = 0  # Seeds weights, shuffling and ops, so one seed gives one set of weights.
    train_subset: int | None = None  # Use only the first N training images (tests, quick runs).
    latent: str = "window"  # What follows Dense(z), one of LATENT_KINDS; see model.py and README.
    latent_scale: float = 2.0  # Slope of the "window" squash at 0 (std for "normalised").
    latent_noise: float = 0.0  # Std of Gaussian noise added to z in training only; see model.py.
    formation_sample: int = 0  # Test digits whose codes are recorded after every epoch (0: none).

    def __post_init__(self) -> None:
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be at least 1, not {self.latent_dim}.")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive integers.")
        if self.latent not in LATENT_KINDS:
            raise ValueError(f"latent must be one of {LATENT_KINDS}, not {self.latent!r}.")
        if self.optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"optimizer must be 'adam' or 'rmsprop', not {self.optimizer!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, not {self.learning_rate}.")
        if self.train_subset is not None and self.train_subset < 1:
            raise ValueError("train_subset must be a positive number of images.")
        if not 0 <= self.formation_sample <= 10_000:
            raise ValueError(f"formation_sample must be between 0 and 10000, not {self.formation_sample}.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def weights_stem(latent_dim: int, dataset: str = "mnist") -> str:
    """The file name stem of a model: ``autoencoder_mnist_z2`` -> ``.weights.h5`` and ``.json``."""
    return f"autoencoder_{dataset}_z{latent_dim}"
