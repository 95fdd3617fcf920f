"""Weights files and their JSON model cards: hashing, atomic writes, reading, retraining.

Every weights file in ``weights/`` has a card beside it (``<name>.json``) that records
how it was trained and the SHA-256 of the file. Loaders refuse a file whose hash differs
and quote the card's ``retrain_command`` so the user knows how to rebuild it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path

from .config import DATASETS, LATENT_KINDS, OPTIMIZERS, TrainConfig, weights_stem
from .data import data_fingerprints


class WeightsError(RuntimeError):
    """The weights or their model card are missing, altered or unreadable."""


def sha256_of(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)``, then move the result onto ``path`` in one step.

    A crash at any moment leaves either the old file or the new one, never half of one.
    The temporary name keeps the real ending, since Keras checks it (".weights.h5").
    """
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def retrain_command(config: TrainConfig, out_dir: Path | str = "weights/") -> str:
    """The shell command that rebuilds these weights, every setting named; error messages quote it."""
    return shlex.join(["python", "-m", "ae_core.train", *config.flags(), "--out", str(out_dir)])


def read_model_card(folder: Path | str, name: str, fix: str) -> dict:
    """The card ``<folder>/<name>.json``; ``fix`` says how to rebuild it if it is unusable."""
    path = Path(folder) / f"{name}.json"
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"No trained model '{name}' in {Path(folder)}: its model card "
                           f"{path.name} is missing. {fix}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise WeightsError(f"The model card {path.name} is not valid JSON. {fix}") from None
    if not isinstance(card, dict) or not isinstance(card.get("sha256"), str):
        raise WeightsError(f"The model card {path.name} has no SHA-256 of its weights. {fix}")
    return card


def read_autoencoder_card(folder: Path | str, name: str, fix: str) -> dict:
    """``read_model_card`` for an autoencoder, refusing a card that fails ``card_problem``."""
    card = read_model_card(folder, name, fix)
    problem = card_problem(card, name)
    if problem:
        raise WeightsError(f"The model card {name}.json is not usable: {problem}. {fix}")
    return card


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_date(value) -> bool:
    try:
        datetime.datetime.fromisoformat(value)
        return True
    except (TypeError, ValueError):
        return False


# What the app reads from a card, and what each field must be. The SHA-256 covers the
# weights, not the card, so a card is checked whole before any page shows or uses it.
_CARD_SCHEMA: dict[str, tuple[Callable[[object], bool], str]] = {
    "name": (lambda value: isinstance(value, str), "a text"),
    "latent_dim": (lambda value: _is_count(value) and value >= 1, "a positive whole number"),
    "dataset": (lambda value: value in DATASETS, f"one of {', '.join(DATASETS)}"),
    "config": (lambda value: isinstance(value, dict), "the training settings"),
    "optimizer": (lambda value: value in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
    "learning_rate": (lambda value: _is_number(value) and value > 0, "a positive number"),
    "batch_size": (lambda value: _is_count(value) and value >= 1, "a positive whole number"),
    "train_images": (_is_count, "a whole number"),
    "epochs_run": (lambda value: _is_count(value) and value >= 1, "a positive whole number"),
    "best_val_mse": (lambda value: _is_number(value) and value >= 0, "a number of at least 0"),
    "training_seconds": (lambda value: _is_number(value) and value >= 0, "a number of at least 0"),
    "date": (_is_date, "an ISO date"),
    "weights_file": (lambda value: isinstance(value, str) and value.endswith(".weights.h5"), "a .weights.h5 file name"),
    "sha256": (lambda value: isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) is not None,
               "64 hexadecimal digits"),
    "history": (lambda value: isinstance(value, list) and all(isinstance(row, dict) for row in value),
                "a list of epochs"),
}


def card_problem(card: dict, name: str) -> str | None:
    """Why ``card``, read from ``<name>.json``, cannot be trusted; None when it can.

    >>> card_problem({"name": "autoencoder_mnist_z2", "dataset": "evil"}, "autoencoder_mnist_z2")
    'its latent_dim is missing (it must be a positive whole number)'
    """
    for field, (valid, meaning) in _CARD_SCHEMA.items():
        if field not in card:
            return f"its {field} is missing (it must be {meaning})"
        if not valid(card[field]):  # The value itself is not repeated: pages render messages.
            return f"its {field} is not {meaning}"
    try:
        config = TrainConfig.from_dict(card["config"])
    except (TypeError, ValueError):
        return "its training settings are not ones this version can build"
    if (config.latent_dim, config.dataset) != (card["latent_dim"], card["dataset"]):
        return "its training settings disagree with its latent_dim or dataset"
    if card["name"] != name or weights_stem(config.latent_dim, config.dataset, config.kind) != name:
        return (f"it describes a {config.kind} model of {config.latent_dim} dimensions on "
                f"{config.dataset}, not the file's model {name}")
    return None


def checked_weights_path(folder: Path | str, card: dict, fix: str) -> Path:
    """The card's weights file, after checking that it exists and matches its SHA-256."""
    # Only a bare file name from the card is used, so a card cannot point outside the folder.
    path = Path(folder) / Path(str(card.get("weights_file", ""))).name
    if not path.is_file():
        raise WeightsError(f"The weights file {path} is missing. {fix}")
    if sha256_of(path) != card["sha256"]:
        raise WeightsError(f"The weights file {path.name} does not match the SHA-256 in its model "
                           f"card, so it is truncated or altered and was not loaded. {fix}")
    return path


def suggested_config(latent_dim: int, dataset: str, kind: str = "ae") -> TrainConfig:
    """The recipe to offer for a missing model: the defaults, and for another kind than the
    plain autoencoder the linear latent it needs."""
    if kind == "ae":
        return TrainConfig(latent_dim=latent_dim, dataset=dataset)
    return TrainConfig(latent_dim=latent_dim, dataset=dataset, kind=kind, latent="linear")


def checked_autoencoder(folder: Path | str, latent_dim: int, dataset: str, kind: str = "ae"
                        ) -> tuple[dict, Path, str]:
    """``(card, weights_path, fix)`` of the model in ``folder``, after every check that needs
    no TensorFlow: the card readable and sound, the weights present and matching its SHA-256,
    the latent's recipe and the kind known. ``fix`` is the retrain command, as a sentence.
    Raises ``WeightsError`` with that sentence."""
    name = weights_stem(latent_dim, dataset, kind)
    fix = "Retrain them with: " + retrain_command(suggested_config(latent_dim, dataset, kind))
    card = read_autoencoder_card(folder, name, fix)
    # The card knows the exact recipe of its weights; quote that when it is there.
    if isinstance(card.get("retrain_command"), str):
        fix = f"Retrain them with: {card['retrain_command']}"
    weights_path = checked_weights_path(folder, card, fix)
    recipe = card.get("config")
    if not isinstance(recipe, dict) or recipe.get("latent") not in LATENT_KINDS:
        # Guessing the architecture would load the numbers into the wrong layers.
        raise WeightsError(f"The model card of {name} does not say how its latent was built. {fix}")
    if recipe.get("kind", "ae") != kind or card.get("kind", "ae") != kind:
        raise WeightsError(f"The model card of {name} is not of the {kind} kind. {fix}")
    return card, weights_path, fix


def data_mismatch(card: dict, dataset: str) -> str | None:
    """One sentence when a card does not show that its model saw ``dataset``, else None.

    Cards record the fingerprints of the splits they trained and validated on
    (``data.FINGERPRINTS``); a model trained on other images draws other things.

    >>> data_mismatch({"data_fingerprints": data_fingerprints("mnist")}, "mnist") is None
    True
    >>> data_mismatch({"data_fingerprints": data_fingerprints("mnist")}, "fashion_mnist")[:46]
    'This model was trained on other images than fa'
    """
    recorded = card.get("data_fingerprints")
    if recorded is None:
        return (f"This model's card does not say which images it was trained on (it predates the "
                f"data check), so it may not have seen {dataset}; retrain it to be sure.")
    if recorded != data_fingerprints(dataset):
        return (f"This model was trained on other images than {dataset} (its card's data "
                f"fingerprint differs), so its map does not describe them; retrain it on {dataset}.")
    return None
