"""Training in the background, one run at a time, with progress you can read and a cancel.

The app's training page starts a run here and polls it; the run itself is ``train.train``
in a thread. Nothing here knows about Streamlit, so the tests drive it directly:

    trainer = Trainer()
    job = trainer.start(TrainConfig(epochs=3, train_subset=5000), name="my-model")
    job.progress()   # Progress(status='running', epoch=1, epochs=3, history=[...], ...)
    job.cancel()     # the run stops after the current batch; nothing is written

A run trains into a hidden staging folder beside the finished models and is moved into
place with one rename when it succeeds, so a cancel, a failure or a crash never leaves a
half-written model where the app looks for models.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .config import NAME_PATTERN, SHIPPED, TrainConfig, models_dir


class TrainerBusy(RuntimeError):
    """Another training is running on this server."""


class TrainingCancelled(Exception):
    """Raised inside the training loop when the user asks it to stop."""


@dataclass(frozen=True)
class Progress:
    status: str  # "running", "done", "cancelled" or "failed".
    epoch: int  # Epochs finished so far.
    epochs: int  # Epochs asked for (early stopping may end the run sooner).
    history: list[dict] = field(default_factory=list)  # One row per epoch: loss, val_loss, seconds.
    message: str = ""  # What happened, for the page to show; the error text on failure.
    name: str = ""  # The model's folder name under models_dir().


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


class TrainingJob:
    """One training run in a thread. Read ``progress()``; call ``cancel()`` to stop it."""

    def __init__(self, config: TrainConfig, name: str, folder: Path):
        self.config, self.name, self.folder = config, name, folder
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._progress = Progress("running", 0, config.epochs, name=name,
                                  message="Loading the data and building the model…")
        self._thread = threading.Thread(target=self._run, name=f"train-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def progress(self) -> Progress:
        with self._lock:
            return self._progress

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> Progress:
        self._thread.join(timeout)
        return self.progress()

    @property
    def running(self) -> bool:
        return self.progress().status == "running"

    def _update(self, **changes) -> None:
        with self._lock:
            self._progress = dataclasses.replace(self._progress, **changes)

    def _run(self) -> None:
        import keras

        from .train import TrainingDiverged, train

        job = self

        class Report(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if job._cancel.is_set():
                    raise TrainingCancelled()

            def on_epoch_end(self, epoch, logs=None):
                row = {"epoch": epoch + 1, **{key: float(value) for key, value in (logs or {}).items()}}
                history = [*job.progress().history, row]
                job._update(epoch=epoch + 1, history=history,
                            message=f"Epoch {epoch + 1} of {job.config.epochs}: "
                                    f"val MSE {row.get('val_loss', float('nan')):.4f}")

        staging = self.folder / f".staging-{self.name}"
        try:
            card = train(self.config, staging, callbacks=[Report()], verbose=0)
            os.replace(staging, self.folder / self.name)  # One step: the model appears whole.
            self._update(status="done", message=f"Saved as {self.name}: best val MSE "
                                                f"{card['best_val_mse']:.4f} after {card['epochs_run']} epochs.")
        except TrainingCancelled:
            self._update(status="cancelled", message="Cancelled; nothing was saved.")
        except (TrainingDiverged, ValueError, OSError) as error:
            self._update(status="failed", message=str(error))
        except Exception as error:  # A training thread must always report, never vanish.
            self._update(status="failed", message=f"Training failed: {type(error).__name__}: {error}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)


class Trainer:
    """Runs at most one ``TrainingJob`` at a time, into ``models_dir()``."""

    def __init__(self):
        self._lock = threading.Lock()
        self.current: TrainingJob | None = None

    def start(self, config: TrainConfig, name: str) -> TrainingJob:
        """Start a run, or raise ``TrainerBusy`` / ``ValueError`` (a bad or taken name)."""
        with self._lock:
            if self.current is not None and self.current.running:
                progress = self.current.progress()
                raise TrainerBusy(f"A training ({progress.name}, epoch {progress.epoch} of "
                                  f"{progress.epochs}) is already running on this server; only one "
                                  f"runs at a time. Wait for it, or cancel it from the Train page.")
            folder = models_dir()
            folder.mkdir(parents=True, exist_ok=True)
            check_name(name, folder)
            self.current = TrainingJob(config, name, folder)
            self.current.start()
            return self.current
