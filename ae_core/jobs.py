"""Trainings started from the browser: each in a process of its own, one at a time for
every server sharing the models folder, stoppable by whoever holds its key.

    trainer = Trainer()
    job = trainer.start(TrainConfig(epochs=3, train_subset=5000), name="my-model", owner=key)
    job.progress()            # Progress(status='running', epoch=1, epochs=3, history=[...], ...)
    job.cancel(key)           # stops the run; nothing is written

A run is ``python -m ae_core.train --progress`` writing into a hidden folder
``<models>/.staging-<name>/``, renamed to ``<models>/<name>/`` in one step when it succeeds,
so the server's memory does not grow with every training and a cancel, a failure or a crash
never leaves half a model where the app looks for models. The process locks its folder
while it lives (``folders.folder_lock``), and reports through files in it
(``ae_core.runs``): so any server sharing the models folder, not only the one that started
a run, shows its progress (``live_runs``), lets its owner stop it (``stop_run``), moves it
into place once it has finished, and offers it for resume once it has died (``leftovers``).
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import runs
from .config import HIGH_LEARNING_RATE, NAME_PATTERN, SHIPPED, TrainConfig, models_dir
from .folders import folder_lock

ROOT = Path(__file__).resolve().parent.parent
# The most one run may ask of this server, in images seen (epochs x training images): about
# three minutes on two CPU cores. Change it with AE_TRAIN_BUDGET.
DEFAULT_BUDGET = 300_000
# Runs of 157 steps learned nothing at the Train page's lowest and highest rates (3e-4 and
# 3e-3), and runs of 314 steps learned at every rate it offers (docs/training.md).
MIN_STEPS = 300
# A run takes its folder's lock once Python and TensorFlow are loaded: until then, and for
# this long at most, a folder with no lock and no saved epoch is a run starting, not a dead one.
STARTING_GRACE = 300.0


def training_budget() -> int:
    return int(os.environ.get("AE_TRAIN_BUDGET") or DEFAULT_BUDGET)


class TrainerBusy(RuntimeError):
    """Another training is running on a server sharing this models folder."""


@dataclass(frozen=True)
class Progress:
    status: str  # "running", "done", "cancelled" or "failed".
    epoch: int  # Epochs finished so far.
    epochs: int  # Epochs asked for (early stopping may end the run sooner).
    history: list[dict] = field(default_factory=list)  # One row per epoch: loss, val_loss, seconds.
    message: str = ""  # What happens now or happened, for the page; the error text on failure.
    name: str = ""  # The model's folder name under models_dir().
    reason: str = ""  # On failure: "nan", "no_better" or "error" (see train.TrainingDiverged).
    fraction: float = 0.0  # Of the whole run, counting the steps of the current epoch.


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
    images = config.train_subset or runs.TRAIN_IMAGES
    if config.epochs * images > training_budget():
        raise ValueError(f"{config.epochs} epochs of {images:,} images is {config.epochs * images:,} images "
                         f"to train on, over this server's budget of {training_budget():,} per run; "
                         f"choose fewer epochs or images.")


def check_steps(config: TrainConfig) -> None:
    """Raise ``ValueError`` for a run too short to learn anything, saying what to change."""
    if runs.total_steps(config) < MIN_STEPS:
        raise ValueError(f"That is {runs.total_steps(config)} training steps (epochs × images ÷ batch "
                         f"size), and a model needs at least {MIN_STEPS} to learn more than the average "
                         f"image; choose more epochs or images, or a smaller batch.")


def _staging(folder: Path, name: str) -> Path:
    return folder / f".staging-{name}"


def _running_progress(staging: Path, config: TrainConfig, name: str) -> Progress:
    """A live run's progress, read from its folder: finished epochs, and the current step."""
    history = (runs.read_state(staging, config) or {}).get("history", [])
    now = runs.read_progress(staging)
    done = len(history)
    within = now["step"] / now["steps"] if now.get("phase") == "training" and now.get("steps") else 0.0
    return Progress("running", done, config.epochs, history, runs.describe(now, config.epochs), name,
                    fraction=min((done + within) / config.epochs, 1.0))


def failure_line(log: str, code: int) -> str:
    """The one line a failed run's log gives the page: its last ``error:`` line (the
    training's own sentence), else the exit code and the name of what was raised. Only the
    name: an exception's message may hold the server's paths.

    >>> failure_line("Traceback (most recent call last):\\n  ...\\nKeyError: '/srv/x'\\n", 1)
    'The training process ended with exit code 1 (KeyError).'
    >>> failure_line("Epoch 1/3\\nerror: The loss became NaN; lower the learning rate.\\n", 3)
    'The loss became NaN; lower the learning rate.'
    """
    lines = log.splitlines()
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if errors:
        return errors[-1]
    raised = [match.group(1) for line in lines if (match := re.match(r"([\w.]+(?:Error|Exception)):", line))]
    cause = f" ({raised[-1]})" if raised else ""
    return f"The training process ended with exit code {code}{cause}."


def failure_advice(progress: Progress, config: TrainConfig) -> str:
    """What went wrong with a failed run, and what to change, in the Train page's terms.

    >>> failure_advice(Progress("failed", 2, 5, reason="no_better"), TrainConfig(train_subset=2000, batch_size=128))
    'In 32 steps the model learned nothing better than drawing the average image. Give it more steps: more epochs or training images, or a smaller batch.'
    """
    if progress.reason == "nan":
        return ("The loss became NaN (not a number): the learning rate is too high for this run. "
                "Choose a lower learning rate.")
    if progress.reason == "no_better":
        taken = progress.epoch * runs.steps_per_epoch(config)
        if config.learning_rate > HIGH_LEARNING_RATE:
            return (f"In {taken} steps the model learned nothing better than drawing the average image, "
                    f"most likely because the learning rate is too high. Choose a lower learning rate.")
        return (f"In {taken} steps the model learned nothing better than drawing the average image. "
                f"Give it more steps: more epochs or training images, or a smaller batch.")
    return f"{progress.message} The server's log has the details."  # The run's own sentence.


class TrainingJob:
    """One run of ``python -m ae_core.train`` in its own process, started by this server.

    Read ``progress()``; ``cancel(owner)`` stops it, given the key it was started with.
    """

    def __init__(self, config: TrainConfig, name: str, folder: Path, owner: str, resume: bool = False):
        self.config, self.name, self.folder = config, name, folder
        self.staging = _staging(folder, name)
        self._key = owner
        self._lock = threading.Lock()
        self._cancelled = False
        self._progress: Progress | None = None  # Set once the process has ended.
        if not resume:
            self.staging.mkdir()  # Fails if the name is taken meanwhile, by another server too.
        (self.staging / "stop").unlink(missing_ok=True)
        runs.write_owner(self.staging, name, config, owner)  # Before the process: see _starting.
        runs.write_progress(self.staging, phase="starting Python and TensorFlow")
        command = [sys.executable, "-m", "ae_core.train", *config.flags(), "--out", str(self.staging),
                   "--progress"]
        with open(self.staging / "train.log", "ab") as log:
            self._process = subprocess.Popen(command + (["--resume"] if resume else []), cwd=ROOT,
                                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True)  # Its own group: cancel ends it all.
        runs.write_owner(self.staging, name, config, owner, pid=self._process.pid)
        self._waiter = threading.Thread(target=self._wait, name=f"train-{name}", daemon=True)
        self._waiter.start()

    @property
    def running(self) -> bool:
        return self.progress().status == "running"

    def owned_by(self, owner: str | None) -> bool:
        return owner == self._key

    def progress(self) -> Progress:
        with self._lock:
            if self._progress is not None:
                return self._progress
        return _running_progress(self.staging, self.config, self.name)

    def cancel(self, owner: str) -> bool:
        """Stop the run if ``owner`` is the key it was started with; returns whether it did."""
        if owner != self._key or not self.running:
            return False
        self._cancelled = True
        runs.request_stop(self.staging)
        try:
            os.killpg(self._process.pid, signal.SIGTERM)  # Ours: no need to wait for its next step.
        except ProcessLookupError:
            pass
        return True

    def join(self, timeout: float | None = None) -> Progress:
        self._waiter.join(timeout)
        return self.progress()

    def _wait(self) -> None:
        code = self._process.wait()
        history = (runs.read_state(self.staging, self.config) or {}).get("history", [])
        if code == 0:
            card_path = runs.card_path(self.staging, self.config)
            if self.staging.exists():  # Else another server moved it into place first.
                os.replace(self.staging, self.folder / self.name)  # One step: the model appears whole.
            card = runs.read_json(self.folder / self.name / card_path.name) or {}
            epochs = card.get("epochs_run", len(history))
            self._finish("done", card.get("history", history),
                         f"Saved as {self.name}: best val MSE {card.get('best_val_mse', float('nan')):.4f} "
                         f"after {epochs} epoch{'s' if epochs != 1 else ''}.")
            return
        error_line = self._error_line(code)  # Before the staging folder, and its log, are removed.
        shutil.rmtree(self.staging, ignore_errors=True)
        if self._cancelled or code == runs.EXIT_CODES["stopped"]:
            self._finish("cancelled", history, "Cancelled; nothing was saved.")
            return
        reason = {runs.EXIT_CODES["nan"]: "nan", runs.EXIT_CODES["no_better"]: "no_better"}.get(code, "error")
        self._finish("failed", history, error_line, reason)

    def _error_line(self, code: int) -> str:
        try:
            log = (self.staging / "train.log").read_text(errors="replace")
        except OSError:
            log = ""
        return failure_line(log, code)

    def _finish(self, status: str, history: list[dict], message: str, reason: str = "") -> None:
        with self._lock:
            self._progress = Progress(status, len(history), self.config.epochs, history, message, self.name,
                                      reason, fraction=1.0 if status == "done" else 0.0)


@dataclass(frozen=True)
class LiveRun:
    """A run training now into the models folder, started by this server or another."""

    name: str
    config: TrainConfig
    progress: Progress
    owner: dict  # runs.read_owner: who may stop it (the SHA-256 of their key).

    def owned_by(self, key: str | None) -> bool:
        return runs.owned_by(self.owner, key)


def _starting(staging: Path, owner: dict | None) -> bool:
    """Whether a folder with no lock holder is a run still starting: its process lives (when
    it is on this machine), or the folder is young; nothing is saved yet, nothing stopped it."""
    if owner is None or runs.stop_requested(staging) or list(staging.glob(".train-*/state.json")):
        return False
    if owner.get("host") == os.uname().nodename and isinstance(owner.get("pid"), int):
        try:
            os.kill(owner["pid"], 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    try:
        return time.time() - (staging / "owner.json").stat().st_mtime < STARTING_GRACE
    except OSError:
        return False


def live_runs(folder: Path | None = None) -> list[LiveRun]:
    """Every run training now (or starting) in the models folder, whichever server started it."""
    folder = folder or models_dir()
    found = []
    for staging in sorted(folder.glob(".staging-*")) if folder.is_dir() else []:
        owner = runs.read_owner(staging)
        config = _config(owner)
        with folder_lock(staging, wait=False) as free:
            alive = not free or _starting(staging, owner)
        if alive and config is not None:
            found.append(LiveRun(owner["name"], config, _running_progress(staging, config, owner["name"]), owner))
    return found


def _config(owner: dict | None) -> TrainConfig | None:
    try:
        return TrainConfig.from_dict(owner["config"]) if owner else None
    except (KeyError, TypeError, ValueError):
        return None


def stop_run(name: str, owner: str | None, folder: Path | None = None) -> bool:
    """Ask the run ``name`` to stop, if ``owner`` is its key; the run ends within a step."""
    staging = _staging(folder or models_dir(), name)
    if not NAME_PATTERN.match(name) or not runs.owned_by(runs.read_owner(staging), owner):
        return False
    runs.request_stop(staging)
    return True


def finished_card(name: str, folder: Path | None = None) -> dict | None:
    """The card of the trained model ``name``, once its run has been moved into place."""
    if not NAME_PATTERN.match(name):
        return None
    cards = sorted(((folder or models_dir()) / name).glob("*_z2.json"))
    return runs.read_json(cards[0]) if cards else None


@dataclass(frozen=True)
class Leftover:
    """A staging folder no process is writing to: its process died before the run finished."""

    name: str
    config: TrainConfig
    epoch: int  # Epochs it had finished.


def leftovers(folder: Path | None = None) -> list[Leftover]:
    """Interrupted runs in the models folder that can be resumed or discarded.

    Cheap enough for every page view: it also moves into place the runs that finished while
    no server watched them, and removes stopped runs and those that died before their first
    epoch. A folder whose process still lives, or is still starting, is left alone.
    """
    folder = folder or models_dir()
    found = []
    for staging in sorted(folder.glob(".staging-*")) if folder.is_dir() else []:
        name = staging.name.removeprefix(".staging-")
        owner = runs.read_owner(staging)
        with folder_lock(staging, wait=False) as free:
            if not free:
                continue  # Still training, here or on another server.
            cards = list(staging.glob("*_z*.json"))
            states = list(staging.glob(".train-*/state.json"))
            if cards and not runs.stop_requested(staging):
                if not (folder / name).exists():
                    os.replace(staging, folder / name)
            elif states and not runs.stop_requested(staging):
                state = runs.read_json(states[0])
                config = _config({"config": state.get("config")}) if state else None
                if config is not None:
                    found.append(Leftover(name, config, int(state.get("epoch", 0))))
            elif not _starting(staging, owner):
                shutil.rmtree(staging, ignore_errors=True)
    return found


class Trainer:
    """Starts ``TrainingJob``s into ``models_dir()``, one at a time for all servers sharing it."""

    def __init__(self):
        self._lock = threading.Lock()
        self.current: TrainingJob | None = None

    def start(self, config: TrainConfig, name: str, owner: str) -> TrainingJob:
        """Start a run, or raise ``TrainerBusy``, or ``ValueError`` (a bad or taken name, a run
        over the budget). ``owner`` is the starter's secret key: only its SHA-256 is stored."""
        return self._start(config, name, owner, resume=False)

    def resume(self, leftover: Leftover, owner: str) -> TrainingJob:
        """Continue an interrupted run from its last finished epoch; the resumer owns it."""
        return self._start(leftover.config, leftover.name, owner, resume=True)

    def _start(self, config: TrainConfig, name: str, owner: str, resume: bool) -> TrainingJob:
        with self._lock:
            folder = models_dir()
            folder.mkdir(parents=True, exist_ok=True)
            busy = [run.progress for run in live_runs(folder)]
            if self.current is not None and self.current.running:
                busy.append(self.current.progress())
            if busy:
                raise TrainerBusy(f"A training ({busy[0].name}, epoch {busy[0].epoch} of {busy[0].epochs}) "
                                  f"is already running, and only one runs at a time: wait for it to finish.")
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
