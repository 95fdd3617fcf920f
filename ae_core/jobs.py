"""Trainings started from the browser: each in a process of its own, one at a time per
server, owned by the session that started it.

    trainer = Trainer()
    job = trainer.start(TrainConfig(epochs=3, train_subset=5000), name="my-model", owner="session-1")
    job.progress()            # Progress(status='running', epoch=1, epochs=3, history=[...], ...)
    job.cancel("session-1")   # ends the process; nothing is written

A run is ``python -m ae_core.train`` writing into a hidden folder ``<models>/.staging-<name>/``,
renamed to ``<models>/<name>/`` in one step when the process succeeds, so the server's memory
does not grow with every training and a cancel, a failure or a crash never leaves half a
model where the app looks for models. The process locks its folder while it lives
(``train.folder_lock``), which lets any server sharing the models folder tell, after a
crash, a run still going elsewhere from one that died (``leftovers``).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .config import HIGH_LEARNING_RATE, NAME_PATTERN, SHIPPED, TrainConfig, models_dir, weights_stem
from .folders import folder_lock

ROOT = Path(__file__).resolve().parent.parent
TRAIN_IMAGES = 60_000
# The most one run may ask of this server, in images seen (epochs x training images): about
# three minutes on two CPU cores. Change it with AE_TRAIN_BUDGET.
DEFAULT_BUDGET = 300_000
# Exit codes of ``python -m ae_core.train`` that say why a run learned nothing usable.
EXIT_NAN, EXIT_NO_BETTER = 3, 4  # train.EXIT_CODES, without importing TensorFlow here.
# Runs of 157 steps learned nothing at the Train page's lowest and highest rates (3e-4 and
# 3e-3), and runs of 314 steps learned at every rate it offers (docs/training.md).
MIN_STEPS = 300


def training_budget() -> int:
    return int(os.environ.get("AE_TRAIN_BUDGET") or DEFAULT_BUDGET)


class TrainerBusy(RuntimeError):
    """Another training is running on this server."""


@dataclass(frozen=True)
class Progress:
    status: str  # "running", "done", "cancelled" or "failed".
    epoch: int  # Epochs finished so far.
    epochs: int  # Epochs asked for (early stopping may end the run sooner).
    history: list[dict] = field(default_factory=list)  # One row per epoch: loss, val_loss, seconds.
    message: str = ""  # What happened, for the page to show; the error text on failure.
    name: str = ""  # The model's folder name under models_dir().
    reason: str = ""  # On failure: "nan", "no_better" or "error" (see train.TrainingDiverged).


def default_name(dataset: str) -> str:
    """A fresh, readable model name such as ``mnist-20261127-221503``."""
    return f"{dataset.replace('_', '-')}-{datetime.datetime.now():%Y%m%d-%H%M%S}"


def check_name(name: str, folder: Path) -> None:
    """Raise ``ValueError`` with the fix when ``name`` cannot become a new model folder."""
    if not NAME_PATTERN.match(name):
        raise ValueError(f"The name {name!r} cannot be used: use 1 to 40 lower-case letters, digits, "
                         f"'-' or '_', starting with a letter or digit (for example "
                         f"{default_name('mnist')!r}).")
    if name == SHIPPED or (folder / name).exists():
        raise ValueError(f"A model called {name!r} already exists; choose another name.")
    if (folder / f".staging-{name}").exists():
        raise ValueError(f"A training called {name!r} is running or was interrupted; choose another "
                         f"name, or resume or discard it on the Train page.")


def check_budget(config: TrainConfig) -> None:
    """Raise ``ValueError`` when one run would ask more of the server than its budget."""
    images = config.train_subset or TRAIN_IMAGES
    if config.epochs * images > training_budget():
        raise ValueError(f"{config.epochs} epochs of {images:,} images is {config.epochs * images:,} images "
                         f"to train on, over this server's budget of {training_budget():,} per run; "
                         f"choose fewer epochs or images.")


def steps(config: TrainConfig) -> int:
    """Optimiser steps the run takes if it runs every epoch."""
    return config.epochs * math.ceil((config.train_subset or TRAIN_IMAGES) / config.batch_size)


def check_steps(config: TrainConfig) -> None:
    """Raise ``ValueError`` for a run too short to learn anything, saying what to change."""
    if steps(config) < MIN_STEPS:
        raise ValueError(f"That is {steps(config)} training steps (epochs × images ÷ batch size), and a "
                         f"model needs at least {MIN_STEPS} to learn more than the average image; "
                         f"choose more epochs or images, or a smaller batch.")


def failure_advice(progress: Progress, config: TrainConfig) -> str:
    """What went wrong with a failed run, and what to change, in the Train page's terms."""
    if progress.reason == "nan":
        return ("The loss became NaN (not a number): the learning rate is too high for this run. "
                "Choose a lower learning rate.")
    if progress.reason == "no_better":
        taken = progress.epoch * math.ceil((config.train_subset or TRAIN_IMAGES) / config.batch_size)
        if config.learning_rate > HIGH_LEARNING_RATE:
            return (f"In {taken} steps the model learned nothing better than drawing the average image, "
                    f"most likely because the learning rate is too high. Choose a lower learning rate.")
        return (f"In {taken} steps the model learned nothing better than drawing the average image. "
                f"Give it more steps: more epochs or training images, or a smaller batch.")
    return "The training process stopped with an error; the server's log has the details."


def _staging(folder: Path, name: str) -> Path:
    return folder / f".staging-{name}"


def _read_state(staging: Path, config: TrainConfig) -> dict | None:
    try:
        return json.loads((staging / f".train-{weights_stem(2, config.dataset)}" / "state.json").read_text())
    except (OSError, ValueError):
        return None


class TrainingJob:
    """One run of ``python -m ae_core.train`` in its own process.

    Read ``progress()``; ``cancel(owner)`` ends the process, for the session that started it.
    """

    def __init__(self, config: TrainConfig, name: str, folder: Path, owner: str, resume: bool = False):
        self.config, self.name, self.folder, self.owner = config, name, folder, owner
        self.staging = _staging(folder, name)
        self._lock = threading.Lock()
        self._cancelled = False
        self._progress = Progress("running", 0, config.epochs, name=name,
                                  message="Starting: loading the data and building the model…")
        if not resume:
            self.staging.mkdir()  # Fails if the name is taken meanwhile, by another server too.
        command = [sys.executable, "-m", "ae_core.train", *config.flags(), "--out", str(self.staging)]
        with open(self.staging / "train.log", "ab") as log:
            self._process = subprocess.Popen(command + (["--resume"] if resume else []), cwd=ROOT,
                                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True)  # Its own group: cancel ends it all.
        self._waiter = threading.Thread(target=self._wait, name=f"train-{name}", daemon=True)
        self._waiter.start()

    @property
    def running(self) -> bool:
        return self.progress().status == "running"

    def progress(self) -> Progress:
        with self._lock:
            progress = self._progress
        if progress.status != "running":
            return progress
        history = (_read_state(self.staging, self.config) or {}).get("history", [])
        if not history:
            return progress
        last = history[-1]
        return dataclasses.replace(progress, epoch=len(history), history=history,
                                   message=f"Epoch {len(history)} of {self.config.epochs}: "
                                           f"val MSE {last['val_loss']:.4f}")

    def cancel(self, owner: str) -> bool:
        """End the run if ``owner`` started it; returns whether it did."""
        if owner != self.owner or not self.running:
            return False
        self._cancelled = True
        try:
            os.killpg(self._process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        return True

    def join(self, timeout: float | None = None) -> Progress:
        self._waiter.join(timeout)
        return self.progress()

    def _wait(self) -> None:
        code = self._process.wait()
        history = (_read_state(self.staging, self.config) or {}).get("history", [])
        if code == 0:
            card = json.loads((self.staging / f"{weights_stem(2, self.config.dataset)}.json").read_text())
            os.replace(self.staging, self.folder / self.name)  # One step: the model appears whole.
            epochs = card["epochs_run"]
            self._finish("done", card["history"], f"Saved as {self.name}: best val MSE {card['best_val_mse']:.4f} "
                                                  f"after {epochs} epoch{'s' if epochs != 1 else ''}.")
            return
        shutil.rmtree(self.staging, ignore_errors=True)
        if self._cancelled:
            self._finish("cancelled", history, "Cancelled; nothing was saved.")
            return
        reason = {EXIT_NAN: "nan", EXIT_NO_BETTER: "no_better"}.get(code, "error")
        self._finish("failed", history, self._error_line(code), reason)

    def _error_line(self, code: int) -> str:
        try:
            lines = (self.staging / "train.log").read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
        return errors[-1] if errors else f"The training process ended with exit code {code}."

    def _finish(self, status: str, history: list[dict], message: str, reason: str = "") -> None:
        with self._lock:
            self._progress = dataclasses.replace(self._progress, status=status, history=history,
                                                 epoch=len(history), message=message, reason=reason)


@dataclass(frozen=True)
class Leftover:
    """A staging folder no process is writing to: the server stopped while it trained."""

    name: str
    config: TrainConfig
    epoch: int  # Epochs it had finished.


def leftovers(folder: Path | None = None) -> list[Leftover]:
    """Interrupted runs in the models folder that can be resumed or discarded.

    Runs that finished while no server watched are moved into place here, and folders that
    hold nothing to resume are removed. A folder whose process still lives is left alone.
    """
    folder = folder or models_dir()
    found = []
    for staging in sorted(folder.glob(".staging-*")) if folder.is_dir() else []:
        name = staging.name.removeprefix(".staging-")
        with folder_lock(staging, wait=False) as free:
            if not free:
                continue  # Still training, here or on another server.
            cards = list(staging.glob("autoencoder_*_z2.json"))
            states = list(staging.glob(".train-*/state.json"))
            if cards and not (folder / name).exists():
                os.replace(staging, folder / name)
            elif states:
                state = json.loads(states[0].read_text())
                found.append(Leftover(name, TrainConfig.from_dict(state["config"]), state["epoch"]))
            else:
                shutil.rmtree(staging, ignore_errors=True)
    return found


class Trainer:
    """Runs at most one ``TrainingJob`` at a time, into ``models_dir()``."""

    def __init__(self):
        self._lock = threading.Lock()
        self.current: TrainingJob | None = None

    def start(self, config: TrainConfig, name: str, owner: str) -> TrainingJob:
        """Start a run, or raise ``TrainerBusy``, or ``ValueError`` (a bad or taken name, a run
        over the budget)."""
        return self._start(config, name, owner, resume=False)

    def resume(self, leftover: Leftover, owner: str) -> TrainingJob:
        """Continue an interrupted run from its last finished epoch; the resumer owns it."""
        return self._start(leftover.config, leftover.name, owner, resume=True)

    def _start(self, config: TrainConfig, name: str, owner: str, resume: bool) -> TrainingJob:
        with self._lock:
            if self.current is not None and self.current.running:
                progress = self.current.progress()
                raise TrainerBusy(f"A training ({progress.name}, epoch {progress.epoch} of "
                                  f"{progress.epochs}) is already running on this server; only one "
                                  f"runs at a time. Wait for it to finish.")
            folder = models_dir()
            folder.mkdir(parents=True, exist_ok=True)
            if not resume:
                check_name(name, folder)
                check_budget(config)
                check_steps(config)
            try:
                self.current = TrainingJob(config, name, folder, owner, resume)
            except FileExistsError:
                raise ValueError(f"A training called {name!r} was started meanwhile; choose another "
                                 f"name.") from None
            return self.current


def discard(leftover: Leftover, folder: Path | None = None) -> None:
    """Remove an interrupted run's folder, unless a process has taken it up again."""
    staging = _staging(folder or models_dir(), leftover.name)
    with folder_lock(staging, wait=False) as free:
        if free:
            shutil.rmtree(staging, ignore_errors=True)
