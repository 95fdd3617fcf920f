"""Every setting of the model and of its training, in one frozen dataclass.

The defaults are the recipe of the shipped MNIST 2-D weights (their card adds the seed and
the epoch cap). ``python -m ae_core.train`` takes one flag per field, and a model card's
``retrain_command`` names every field, both derived from the fields below, so the three
can never drift apart:

>>> config = TrainConfig(latent_dim=10, latent="linear", epochs=30)
>>> config.flags()[:6]
['--latent-dim', '10', '--dataset', 'mnist', '--epochs', '30']
>>> TrainConfig.from_flags(config.flags()) == config
True
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .datasets import BY_NAME

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
DATASETS = tuple(BY_NAME)  # tfds names, from the table in ae_core/datasets.py.
# The square of the latent plane the app explores, as in the article: z1 and z2 in [-5, 5].
WINDOW = (-5.0, 5.0)

# What may follow Dense(z) in the encoder; ae_core/model.py builds each, docs/model.md compares them.
LATENT_KINDS = ("relu", "linear", "batchnorm", "normalised", "uniform", "window")
# Which model: the plain autoencoder, a variational one, or one whose codes also keep UMAP's
# neighbourhood graph of the training images (Parametric UMAP). All share the encoder's
# conv body and the decoder, so they compare fairly and the browser decodes every one.
MODEL_KINDS = ("ae", "vae", "umap")
OPTIMIZERS = ("adam", "rmsprop")
MONITORS = ("val_loss", "loss")
# What the UMAP graph measures between training images' pixels; see docs/model.md for the choice.
UMAP_METRICS = ("euclidean", "cosine")
# Above this learning rate, a run that learns nothing has most likely killed its ReLUs;
# at or below it, it had too few steps (measured: see docs/training.md).
HIGH_LEARNING_RATE = 3e-3


def _setting(default, help: str, choices: Sequence[str] | None = None):
    """A field with its command-line help (and choices), so the flags derive from the fields."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class TrainConfig:
    latent_dim: int = _setting(2, "size of the code z: 2 for the explorable map, 10 to compare")
    dataset: str = _setting("mnist", "the tfds dataset to train on", DATASETS)
    epochs: int = _setting(50, "upper bound; early stopping usually ends the run sooner")
    batch_size: int = _setting(128, "images per step (the article's); the global batch on several GPUs")
    optimizer: str = _setting("adam", "adam, or the article's rmsprop", OPTIMIZERS)
    learning_rate: float = _setting(1e-3, "start value; lowered when the monitored loss stalls")
    patience: int = _setting(5, "epochs without a better monitored loss before early stopping")
    lr_patience: int = _setting(3, "epochs without a better monitored loss before the rate is cut")
    lr_factor: float = _setting(0.5, "what the learning rate is multiplied by on a plateau")
    lr_min: float = _setting(1e-5, "the learning rate is never cut below this")
    eval_batch_size: int = _setting(1024, "images per step when validating (memory, not maths)")
    seed: int = _setting(0, "seeds the weights, each epoch's order and the ops: one seed, one result")
    train_subset: int | None = _setting(None, "train on the first N training images only")
    latent: str = _setting("window", "what follows Dense(z); see ae_core/model.py", LATENT_KINDS)
    latent_scale: float = _setting(2.0, "slope of the window at 0 (std for 'normalised')")
    latent_noise: float = _setting(0.0, "std of noise added to z in training only")
    encoder_hidden: int = _setting(128, "units of a Dense(relu) after the conv body, for every kind; 0: the article's")
    encoder_filters: int = _setting(8, "filters of each of the encoder's four convolutions (the article's 8)")
    formation_sample: int = _setting(0, "record the codes of the first N test images after every epoch")
    kind: str = _setting("ae", "ae, a variational 'vae', or 'umap' (reconstruction plus UMAP's graph loss)",
                         MODEL_KINDS)
    beta: float = _setting(1.0, "vae: weight of the KL term to N(0, I) against the summed per-image BCE")
    umap_neighbors: int = _setting(15, "umap: neighbours per training image in the fuzzy k-NN graph")
    umap_metric: str = _setting("euclidean", "umap: the distance between training images' pixels that "
                                "the graph's neighbours follow", UMAP_METRICS)
    umap_min_dist: float = _setting(0.1, "umap: how tightly codes may pack (sets a, b of q = 1/(1+a*d^2b))")
    umap_weight: float = _setting(1.0, "umap: weight of UMAP's cross-entropy against the per-pixel BCE")
    umap_negatives: int = _setting(5, "umap: negative samples (shuffled tails) per sampled edge")
    umap_edges: int = _setting(2048, "umap: graph edges sampled by weight at each step")
    # The test split has no graph, so for the umap kind val_loss is the reconstruction alone.
    monitor: str = _setting("val_loss", "what early stopping, the rate cuts and the kept weights follow: "
                            "'val_loss' on the test split, or the training 'loss' (umap: with its graph term)",
                            MONITORS)
    continue_from: str | None = _setting(None, "the folder of a finished model of this kind and shape "
                                         "(its card and weights): start from its weights, not random ones, "
                                         "and continue its history")

    def __post_init__(self) -> None:
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be at least 1, not {self.latent_dim}.")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("epochs and the batch sizes must be positive integers.")
        for name in ("dataset", "latent", "optimizer", "kind", "monitor", "umap_metric"):
            choices = _field(name).metadata["choices"]
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, not {getattr(self, name)!r}.")
        if not self.learning_rate > 0 or not 0 < self.lr_min <= self.learning_rate:
            raise ValueError(f"learning_rate must be positive and at least lr_min ({self.lr_min:g}), "
                             f"not {self.learning_rate:g}.")
        if not 0 < self.lr_factor < 1:
            raise ValueError(f"lr_factor must be between 0 and 1, not {self.lr_factor}.")
        if self.train_subset is not None and self.train_subset < 1:
            raise ValueError("train_subset must be a positive number of images.")
        if self.encoder_filters < 1:
            raise ValueError(f"encoder_filters must be a positive number of filters such as --encoder-filters 8 "
                             f"(the article's), not {self.encoder_filters}.")
        if self.encoder_hidden < 0:
            raise ValueError(f"encoder_hidden must be 0 (the article's encoder) or a positive number of units "
                             f"such as --encoder-hidden 128, not {self.encoder_hidden}.")
        if not 0 <= self.formation_sample <= 10_000:
            raise ValueError(f"formation_sample must be between 0 and 10000, not {self.formation_sample}.")
        if self.kind != "ae" and self.latent != "linear":
            raise ValueError(f"The {self.kind} kind has a plain linear latent (its own loss sets the "
                             f"codes' scale), so pass --latent linear, not {self.latent!r}.")
        if self.kind == "vae" and self.latent_noise:
            raise ValueError("The vae kind samples its own noise, so leave latent_noise at 0.")
        if not self.beta > 0:
            raise ValueError(f"beta must be positive (1 is the plain VAE), not {self.beta:g}.")
        if self.umap_neighbors < 2 or self.umap_negatives < 1 or self.umap_edges < 1:
            raise ValueError("umap_neighbors must be at least 2, and umap_negatives and umap_edges at least 1.")
        if not 0 <= self.umap_min_dist < 1 or not self.umap_weight > 0:
            raise ValueError(f"umap_min_dist must be in [0, 1) and umap_weight positive, not "
                             f"{self.umap_min_dist:g} and {self.umap_weight:g}.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """A config from a card's ``config``; fields it lacks (older cards) take their defaults,
        except ``encoder_hidden``: a card from before that setting has the article's encoder."""
        names = {item.name for item in dataclasses.fields(cls)}
        return cls(**{"encoder_hidden": 0, **{key: value for key, value in values.items() if key in names}})

    def flags(self) -> list[str]:
        """Every field as a command-line flag, in field order: what ``retrain_command`` prints."""
        words = []
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value is not None:
                words += flag_words(item.name, value)
        return words

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One flag per field, with its default, help and choices."""
        for item in dataclasses.fields(cls):
            kind = {"int": int, "float": float, "str": str, "int | None": int, "str | None": str}[str(item.type)]
            parser.add_argument(_flag(item.name), type=kind, default=item.default,
                                choices=item.metadata["choices"], help=item.metadata["help"])

    @classmethod
    def from_flags(cls, argv: Sequence[str]) -> "TrainConfig":
        parser = argparse.ArgumentParser(add_help=False)
        cls.add_arguments(parser)
        return cls.from_namespace(parser.parse_args(argv))

    @classmethod
    def from_namespace(cls, arguments: argparse.Namespace) -> "TrainConfig":
        return cls(**{item.name: getattr(arguments, item.name) for item in dataclasses.fields(cls)})


def _field(name: str) -> dataclasses.Field:
    return next(item for item in dataclasses.fields(TrainConfig) if item.name == name)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def flag_words(name: str, value) -> list[str]:
    """A setting and its value as the command line spells them: ``['--learning-rate', '0.003']``."""
    return [_flag(name), f"{value:g}" if isinstance(value, float) else str(value)]


def weights_stem(latent_dim: int, dataset: str = "mnist", kind: str = "ae") -> str:
    """The file name stem of a model, the one place names are made: -> ``.weights.h5`` and ``.json``.

    The plain autoencoder keeps its original name, so the shipped files and cards stand:

    >>> weights_stem(2), weights_stem(2, "fashion_mnist", kind="umap")
    ('autoencoder_mnist_z2', 'umap_fashion_mnist_z2')
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, not {kind!r}.")
    prefix = "autoencoder" if kind == "ae" else kind
    return f"{prefix}_{dataset}_z{latent_dim}"
