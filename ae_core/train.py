"""Train the autoencoder and write weights plus a JSON model card.

    python -m ae_core.train --latent-dim 2 --epochs 50 --batch-size 128 --out weights/

What a run guarantees:

* **Validation** on the test split every epoch; ``ModelCheckpoint`` keeps the weights of
  the best ``val_loss`` and those are the ones written at the end, so an
  ``EarlyStopping(patience=5)`` stop or a later worse epoch never loses the best model.
* **Resume.** ``BackupAndRestore`` saves the whole training state (weights, optimiser,
  epoch) after every epoch in ``<out>/.train-<name>/``. After a crash or ``kill -9``,
  ``--resume`` continues from the last finished epoch; only the epoch in progress is lost.
  The callbacks' own memory (best loss, patience counter) is rebuilt from the CSV log.
* **Nothing half-written.** The final weights go to a temporary file and then
  ``os.replace`` onto the real name, with the model card written the same way. A run
  whose loss becomes NaN exits non-zero and leaves the existing weights untouched.
* **Reproducible.** One ``--seed`` seeds the weights, the shuffle and TensorFlow's ops
  (with op determinism on), so two runs give byte-identical weights on one machine.
* **Scales out without changes.** The model is built and compiled under a
  ``tf.distribute`` strategy: ``MirroredStrategy`` over every GPU when there are several,
  TensorFlow's default (one device) otherwise. ``--batch-size`` is the global batch.
* **How the map formed.** With ``--formation-sample N``, the codes of the first N test
  digits are recorded after every epoch into ``<name>.formation.npz``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from .cards import retrain_command, sha256_of, write_atomically
from .config import LATENT_KINDS, TrainConfig, weights_stem
from .data import CLASS_NAMES, load_mnist
from .model import build_autoencoder


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; no weights were written."""


def _read_history(log_path: Path) -> list[dict[str, float]]:
    if not log_path.exists():
        return []
    with open(log_path, newline="") as file:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(file)]


def _make_dataset(images: np.ndarray, batch_size: int, shuffle_seed: int | None) -> tf.data.Dataset:
    dataset = tf.data.Dataset.from_tensor_slices((images, images))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def distribution_strategy() -> tf.distribute.Strategy:
    """``MirroredStrategy`` when several GPUs are visible, else the default strategy.

    Mirroring copies the model onto each GPU and splits every batch between them; on one
    device it would only add overhead, so the default strategy is used there.
    """
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def train(config: TrainConfig, out_dir: Path | str, resume: bool = False,
          callbacks: Sequence = (), verbose: int = 1,
          strategy: tf.distribute.Strategy | None = None) -> dict:
    """Train per ``config``, write ``<out_dir>/<name>.weights.h5`` and ``<name>.json``.

    Returns the model card. Raises ``TrainingDiverged`` (leaving ``out_dir``'s existing
    files untouched) when the loss becomes NaN or the model ends no better than drawing
    the average image. Extra Keras ``callbacks`` (a progress bar in a UI, say) are called
    after ours; an exception raised in one (a cancel button, say) ends the run with
    nothing written. Weights and card are each replaced atomically; a crash between the
    two leaves a card whose SHA-256 does not match, which the loader refuses.
    ``strategy`` defaults to ``distribution_strategy()``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = weights_stem(config.latent_dim, config.dataset)
    work_dir = out_dir / f".train-{name}"
    if work_dir.exists() and not resume:
        shutil.rmtree(work_dir)  # A fresh run must not inherit an old run's state.
    work_dir.mkdir(exist_ok=True)
    log_path = work_dir / "history.csv"
    best_path = work_dir / "best.weights.h5"

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()

    train_images, _ = load_mnist("train", config.dataset)
    test_images, test_labels = load_mnist("test", config.dataset)
    if config.train_subset is not None:
        train_images = train_images[: config.train_subset]
    train_data = _make_dataset(train_images, config.batch_size, shuffle_seed=config.seed)
    test_data = _make_dataset(test_images, 1024, shuffle_seed=None)

    strategy = strategy or distribution_strategy()
    with strategy.scope():  # Variables made here are mirrored across the strategy's devices.
        autoencoder, encoder, _ = build_autoencoder(config.latent_dim, config.latent,
                                                    config.latent_scale, config.latent_noise)
        optimizer_class = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}
        # The article passed lr= to compile(), which Keras rejects; the rate belongs to the optimiser.
        autoencoder.compile(optimizer=optimizer_class[config.optimizer](config.learning_rate),
                            loss="mse")

    # On resume, the best val_loss so far and the epochs since it come from the log, so
    # that checkpointing and early stopping carry on as if the run had never stopped.
    history = _read_history(log_path)
    best_so_far = min((row["val_loss"] for row in history), default=math.inf)
    epochs_since_best = 0
    for row in reversed(history):
        if row["val_loss"] <= best_so_far:
            break
        epochs_since_best += 1

    early_stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience)
    our_callbacks = [
        keras.callbacks.BackupAndRestore(str(work_dir / "backup")),
        keras.callbacks.TerminateOnNaN(),
        _EpochTimer(),
        keras.callbacks.ModelCheckpoint(
            str(best_path), monitor="val_loss", save_best_only=True, save_weights_only=True,
            initial_value_threshold=best_so_far if history else None),
        _ResumedEarlyStopping(early_stopping, best_so_far, epochs_since_best),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                          patience=config.lr_patience, min_lr=1e-5),
        keras.callbacks.CSVLogger(str(log_path), append=True),
    ]
    if config.formation_sample:
        our_callbacks.insert(0, _LatentSnapshots(encoder, test_images[: config.formation_sample],
                                                 work_dir / "formation"))
    autoencoder.fit(train_data, validation_data=test_data, epochs=config.epochs,
                    callbacks=our_callbacks + list(callbacks), verbose=verbose)

    history = _read_history(log_path)
    losses = [row["loss"] for row in history] + [row["val_loss"] for row in history]
    if not history or not all(math.isfinite(loss) for loss in losses) or not best_path.exists():
        # Keep the work dir: it shows what happened. The shipped weights are untouched.
        raise TrainingDiverged(
            f"Training diverged (the loss became NaN or infinite) after {len(history)} "
            f"epoch(s); lower --learning-rate. Existing weights in {out_dir} were left unchanged.")
    # A too-large learning rate often does not reach NaN: the ReLUs die and the decoder
    # draws one constant image. Anything no better than the average image has learned nothing.
    baseline = float(np.mean((test_images - train_images.mean(axis=0)) ** 2))
    best_val_mse = min(row["val_loss"] for row in history)
    if best_val_mse >= baseline:
        raise TrainingDiverged(
            f"Training failed: the best val MSE {best_val_mse:.4f} is no better than drawing the "
            f"average image ({baseline:.4f}); lower --learning-rate. Existing weights in "
            f"{out_dir} were left unchanged.")

    # The checkpoint also holds the optimiser's slots; the shipped file holds only the
    # model's own weights, saved from an uncompiled copy of the architecture.
    autoencoder.load_weights(best_path)
    export, _, _ = build_autoencoder(config.latent_dim, config.latent, config.latent_scale,
                                     config.latent_noise)
    export.set_weights(autoencoder.get_weights())
    weights_path = out_dir / f"{name}.weights.h5"
    write_atomically(weights_path, lambda path: export.save_weights(str(path)))
    card = {
        "name": name,
        "config": config.to_dict(),
        "latent_dim": config.latent_dim,
        "dataset": config.dataset,
        "optimizer": config.optimizer,
        "learning_rate": config.learning_rate,
        "batch_size": config.batch_size,
        "train_images": int(len(train_images)),
        "epochs_run": len(history),
        "best_val_mse": best_val_mse,
        "average_image_mse": baseline,
        "training_seconds": round(sum(row.get("seconds", 0.0) for row in history), 1),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "tfds_version": tfds.__version__,
        "weights_file": weights_path.name,
        "sha256": sha256_of(weights_path),
        "history": history,
        "retrain_command": retrain_command(config, out_dir),
    }
    if config.formation_sample:
        # One (sample, latent_dim) array per finished epoch, kept in the work dir so that a
        # resumed run still has the epochs before the interruption.
        snapshots = [np.load(work_dir / "formation" / f"epoch_{epoch:03d}.npy")
                     for epoch in range(len(history))]
        formation_path = out_dir / f"{name}.formation.npz"
        write_atomically(formation_path, lambda path: np.savez_compressed(
            path, codes=np.stack(snapshots),
            labels=test_labels[: config.formation_sample],
            val_loss=np.array([row["val_loss"] for row in history])))
        card["formation_file"] = formation_path.name
    card["replicas"] = int(strategy.num_replicas_in_sync)
    write_atomically(out_dir / f"{name}.json",
                      lambda path: path.write_text(json.dumps(card, indent=2) + "\n"))
    shutil.rmtree(work_dir)
    return card


class _EpochTimer(keras.callbacks.Callback):
    """Adds the epoch's wall time to the logs, so the CSV log (and the card) holds it."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["seconds"] = round(time.perf_counter() - self._start, 2)


class _LatentSnapshots(keras.callbacks.Callback):
    """Encodes a fixed sample after every epoch and saves the codes as ``epoch_NNN.npy``."""

    def __init__(self, encoder, images: np.ndarray, folder: Path):
        super().__init__()
        self.encoder, self.images, self.folder = encoder, images, folder
        folder.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        codes = self.encoder.predict(self.images, batch_size=1024, verbose=0)
        np.save(self.folder / f"epoch_{epoch:03d}.npy", codes.astype(np.float32))


class _ResumedEarlyStopping(keras.callbacks.Callback):
    """``EarlyStopping`` that starts from the best loss and wait counter of a resumed run."""

    def __init__(self, early_stopping, best: float, wait: int):
        super().__init__()
        self.early_stopping, self.best, self.wait = early_stopping, best, wait

    def set_model(self, model):
        super().set_model(model)
        self.early_stopping.set_model(model)

    def on_train_begin(self, logs=None):
        self.early_stopping.on_train_begin(logs)
        if math.isfinite(self.best):
            self.early_stopping.best, self.early_stopping.wait = self.best, self.wait

    def on_epoch_end(self, epoch, logs=None):
        self.early_stopping.on_epoch_end(epoch, logs)


def main(argv: Sequence[str] | None = None) -> int:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m ae_core.train", description=__doc__.split("\n")[0])
    parser.add_argument("--latent-dim", type=int, default=defaults.latent_dim)
    parser.add_argument("--dataset", default=defaults.dataset, choices=tuple(CLASS_NAMES))
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--optimizer", default=defaults.optimizer, choices=("adam", "rmsprop"))
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--patience", type=int, default=defaults.patience)
    parser.add_argument("--latent", default=defaults.latent,
                        choices=LATENT_KINDS,
                        help="what follows Dense(z); see ae_core/model.py")
    parser.add_argument("--latent-scale", type=float, default=defaults.latent_scale)
    parser.add_argument("--latent-noise", type=float, default=defaults.latent_noise,
                        help="std of noise added to z in training only")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--train-subset", type=int, default=None,
                        help="train on the first N training images only")
    parser.add_argument("--formation-sample", type=int, default=defaults.formation_sample,
                        help="record the codes of the first N test digits after every epoch")
    parser.add_argument("--out", default="weights/", help="folder for the weights and card")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from its last finished epoch")
    args = parser.parse_args(argv)
    try:
        config = TrainConfig(
            latent_dim=args.latent_dim, dataset=args.dataset, epochs=args.epochs,
            batch_size=args.batch_size, optimizer=args.optimizer,
            learning_rate=args.learning_rate, patience=args.patience, seed=args.seed,
            latent=args.latent, latent_scale=args.latent_scale, latent_noise=args.latent_noise,
            train_subset=args.train_subset, formation_sample=args.formation_sample)
        card = train(config, args.out, resume=args.resume,
                     verbose=1 if sys.stdout.isatty() else 2)
    except (ValueError, TrainingDiverged) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {Path(args.out) / card['weights_file']}: best val MSE "
          f"{card['best_val_mse']:.4f} after {card['epochs_run']} epochs "
          f"({card['training_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
