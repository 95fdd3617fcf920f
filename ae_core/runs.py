"""A training run's folder and what the run and the servers tell each other through it.

No TensorFlow here: the web servers read these files, and only the training process (``python
-m ae_core.train``) imports Keras. A run trains into an output folder ``<out>/``:

    <out>/.train-<stem>/state.json   the resumable state after each epoch (``train.RunState``)
    <out>/progress.json              what it is doing now, rewritten at least every second
    <out>/stop                       made by whoever may stop it; the run then exits at once
    <out>/owner.json                 for a run started from the browser: its name, recipe,
                                     start time and the SHA-256 of its owner's key

A run started from the browser trains into ``<models>/.staging-<name>/`` (``ae_core.jobs``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import time
from pathlib import Path

from .cards import write_atomically
from .config import TrainConfig, weights_stem

TRAIN_IMAGES, TEST_IMAGES = 60_000, 10_000  # The sizes of both datasets' splits.
# How ``python -m ae_core.train`` ends when a run does not give a model, so a caller knows why.
EXIT_CODES = {"nan": 3, "no_better": 4, "stopped": 5}
PROGRESS_EVERY = 0.5  # Seconds between progress writes while training (a page polls each second).


def steps_per_epoch(config: TrainConfig) -> int:
    return math.ceil((config.train_subset or TRAIN_IMAGES) / config.batch_size)


def total_steps(config: TrainConfig) -> int:
    """Optimiser steps the run takes if it runs every epoch."""
    return config.epochs * steps_per_epoch(config)


def work_dir(out_dir: Path, config: TrainConfig) -> Path:
    """Where the run keeps its resumable state until its card is written."""
    return Path(out_dir) / f".train-{weights_stem(config.latent_dim, config.dataset, config.kind)}"


def card_path(out_dir: Path, config: TrainConfig) -> Path:
    return Path(out_dir) / f"{weights_stem(config.latent_dim, config.dataset, config.kind)}.json"


def read_state(out_dir: Path, config: TrainConfig) -> dict | None:
    """The run's saved state (epochs finished, history), or None before its first epoch."""
    return read_json(work_dir(out_dir, config) / "state.json")


def read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


# --- What the run is doing now ------------------------------------------------------------

def write_progress(out_dir: Path, **fields) -> None:
    """Replace ``progress.json`` with ``fields`` and the time; atomically, so readers never see half."""
    payload = json.dumps({**fields, "updated": time.time()})
    write_atomically(Path(out_dir) / "progress.json", lambda path: path.write_text(payload))


def read_progress(out_dir: Path) -> dict:
    """The run's last progress report: ``phase`` and, while training, ``epoch``, ``step``,
    ``steps``, ``loss`` and ``images_per_second``; ``{}`` before the first."""
    return read_json(Path(out_dir) / "progress.json") or {}


def describe(progress: dict, epochs: int) -> str:
    """One line for a page, from ``read_progress``.

    >>> describe({"phase": "training", "epoch": 1, "step": 40, "steps": 79, "loss": 0.061,
    ...           "images_per_second": 1520.4}, epochs=3)
    'Epoch 1 of 3: step 40 of 79, loss 0.0610, 1,520 images a second'
    >>> describe({}, epochs=3)
    'Starting Python and TensorFlow…'
    """
    phase = progress.get("phase") or "starting Python and TensorFlow"
    if phase in ("training", "validating") and "step" in progress:
        line = f"Epoch {progress['epoch']} of {epochs}: "
        if phase == "validating":
            return line + f"measuring the test MSE (batch {progress['step']} of {progress['steps']})"
        return (line + f"step {progress['step']} of {progress['steps']}, loss {progress['loss']:.4f}, "
                f"{progress['images_per_second']:,.0f} images a second")
    return phase[0].upper() + phase[1:] + "…"


def epoch_mse(row: dict) -> tuple[float | None, float | None]:
    """An epoch's (training, validation) MSE from its history row, None where it has none. The
    ae kind's losses are its MSE; the vae and umap kinds' losses add other terms, so they
    record the MSE beside them.

    >>> epoch_mse({"loss": 0.041, "val_loss": 0.038})
    (0.041, 0.038)
    >>> epoch_mse({"loss": 150.2, "mse": 0.041, "val_loss": 141.0, "val_mse": 0.037})
    (0.041, 0.037)
    """
    return row.get("mse", row.get("loss")), row.get("val_mse", row.get("val_loss"))


# --- Stopping and owning a run ------------------------------------------------------------

def request_stop(out_dir: Path) -> None:
    (Path(out_dir) / "stop").touch()


def stop_requested(out_dir: Path) -> bool:
    return (Path(out_dir) / "stop").exists()


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def write_owner(out_dir: Path, name: str, config: TrainConfig, key: str, pid: int | None = None) -> None:
    """Record who may stop the run (only the SHA-256 of the key, which the starter keeps) and,
    once it is started, its process on this machine."""
    owner = {"name": name, "config": config.to_dict(), "key_sha256": key_digest(key),
             "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "host": os.uname().nodename, "pid": pid}
    write_atomically(Path(out_dir) / "owner.json", lambda path: path.write_text(json.dumps(owner)))


def read_owner(out_dir: Path) -> dict | None:
    return read_json(Path(out_dir) / "owner.json")


def owned_by(owner: dict | None, key: str | None) -> bool:
    return bool(owner and key and owner.get("key_sha256") == key_digest(key))
