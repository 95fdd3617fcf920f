"""Weights files and their JSON model cards: hashing, atomic writes, reading, retraining.

Every weights file in ``weights/`` has a card beside it (``<name>.json``) that records
how it was trained and the SHA-256 of the file. Loaders refuse a file whose hash differs
and quote the card's ``retrain_command`` so the user knows how to rebuild it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from collections.abc import Callable
from pathlib import Path

from .config import TrainConfig
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
