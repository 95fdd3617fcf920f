"""Train the autoencoder and write weights plus a JSON model card.

    python -m ae_core.train --latent-dim 2 --epochs 50 --out weights/

What a run guarantees:

* **Validation** on the test split every epoch; the weights of the best ``val_loss`` (or of
  the training ``loss``, with ``--monitor loss``) are the ones written at the end, so an early
  stop or a later worse epoch never loses the best model.
* **Resume is the same run.** After every epoch the whole training state (weights with the
  optimiser's slots, the history, the early-stopping and learning-rate counters) is saved
  atomically in ``<out>/.train-<name>/``. Each epoch's order of the training images is a
  function of the seed and the epoch number alone. So after a crash or ``kill -9``,
  ``--resume`` continues from the last finished epoch and ends with the very weights an
  uninterrupted run would have. It refuses a different recipe with one sentence.
* **Nothing half-written.** The final weights go to a temporary file and then
  ``os.replace`` onto the real name, then the card the same way; the saved state is only
  removed once the card is written. A run whose loss becomes NaN, or that learns nothing
  better than the average image, exits non-zero and leaves the existing weights untouched.
* **Reproducible.** One ``--seed`` seeds the weights, the order and TensorFlow's ops (with
  op determinism on), so two runs give byte-identical weights on one machine.
* **Scales out without changes.** The model is built and compiled under a
  ``tf.distribute`` strategy: ``MirroredStrategy`` over every GPU when there are several,
  TensorFlow's default (one device) otherwise. ``--batch-size`` is the global batch.
* **How the map formed.** With ``--formation-sample N``, the codes of the first N test
  images are recorded after every epoch into ``<name>.formation.npz``.
* **The map is ready.** Once a 2-D model is saved, the command line computes what the map's
  first view of it reads (``store.derive_map_data``) into the cache folder, so that view
  encodes nothing.
* **Which data it saw.** The card records the fingerprints of the training and test splits
  (``data.FINGERPRINTS``), which the loader has checked against the original files.
* **Longer training without starting over.** ``--continue-from FOLDER`` starts from the
  weights of the finished model of the same kind in FOLDER (checked against its card's
  SHA-256) with a fresh optimiser at ``--learning-rate``. The card then describes the whole
  model: the parent's epochs and time followed by this run's, and a retrain command that
  chains the parent's and this one.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import kinds, runs, store
from .cards import WeightsError, checked_autoencoder, retrain_command, sha256_of, write_atomically
from .config import HIGH_LEARNING_RATE, TrainConfig, flag_words, weights_stem
from .data import data_fingerprints, import_tfds, load_mnist
from .folders import folder_lock
from .inference import Autoencoder
from .model import build_autoencoder


class TrainingDiverged(RuntimeError):
    """The run learned nothing usable; no weights were written.

    ``reason`` is ``"nan"`` (the loss became NaN or infinite: the rate is too high) or
    ``"no_better"`` (no better than drawing the average image: too few steps, or dead
    units after too high a rate), so that a page can give advice in its own terms.
    """

    def __init__(self, message: str, reason: str, best_val_mse: float = math.nan,
                 baseline: float = math.nan):
        super().__init__(message)
        self.reason, self.best_val_mse, self.baseline = reason, best_val_mse, baseline


def epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    """The order of the training images in ``epoch``: a function of the seed and epoch only.

    >>> epoch_order(0, 1, 5).tolist() == epoch_order(0, 1, 5).tolist() != epoch_order(0, 2, 5).tolist()
    True
    """
    return np.random.default_rng([seed, epoch]).permutation(count)


class _EpochOrderedData(keras.callbacks.Callback):
    """The training set as a tf.data pipeline whose order in each epoch is ``epoch_order``.

    Keras makes a new iterator at the start of every epoch, after ``on_epoch_begin``, and
    the generator reads the epoch number then. A resumed run therefore sees, in its epoch
    3, exactly the order an uninterrupted run saw in its epoch 3.
    """

    def __init__(self, images: np.ndarray, batch_size: int, seed: int):
        super().__init__()
        self.images, self.batch_size, self.seed, self.epoch = images, batch_size, seed, 0
        spec = tf.TensorSpec((None, *images.shape[1:]), tf.float32)
        batches = -(-len(images) // batch_size)
        # Told its length, Keras does not first meet the generator's end as "ran out of data".
        self.dataset = tf.data.Dataset.from_generator(
            self._batches, output_signature=(spec, spec)).apply(
            tf.data.experimental.assert_cardinality(batches)).prefetch(2)

    def _batches(self):
        order = epoch_order(self.seed, self.epoch, len(self.images))
        for start in range(0, len(order), self.batch_size):
            batch = self.images[order[start:start + self.batch_size]]
            yield batch, batch

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch


def _test_dataset(images: np.ndarray, batch_size: int) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((images, images)).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def distribution_strategy() -> tf.distribute.Strategy:
    """``MirroredStrategy`` when several GPUs are visible, else the default strategy.

    Mirroring copies the model onto each GPU and splits every batch between them; on one
    device it would only add overhead, so the default strategy is used there.
    """
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


class RunState:
    """The saved state of an unfinished run, in ``<out>/.train-<name>/``.

    ``state.json`` names the epochs finished, the history, the callbacks' counters and the
    recipe; it points at the weights file of its own epoch, written before it. Each is
    replaced atomically, so a kill at any moment leaves a state that matches its weights.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / "state.json"

    def read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None

    def write(self, model: keras.Model, state: dict) -> None:
        weights = self.folder / f"epoch-{state['epoch']:03d}.weights.h5"
        write_atomically(weights, lambda path: model.save_weights(str(path)))
        write_atomically(self.path, lambda path: path.write_text(
            json.dumps({**state, "weights_file": weights.name}, indent=1)))
        for old in self.folder.glob("epoch-*.weights.h5"):
            if old != weights:
                old.unlink()

    def restore_weights(self, model: keras.Model, state: dict) -> None:
        if not model.optimizer.built:  # The file holds the optimiser's slots too.
            model.optimizer.build(model.trainable_variables)
        model.load_weights(str(self.folder / state["weights_file"]))


# The counters of Keras's callbacks that decide what happens next; saved with the state.
_COUNTERS = {"early_stopping": ("wait", "best", "best_epoch"),
             "reduce_lr": ("wait", "best", "cooldown_counter")}


class _SaveState(keras.callbacks.Callback):
    """After every epoch: the best weights so far, then the run's state (``RunState``).

    It runs after the other callbacks, so on a resume it puts their counters back after
    they have reset themselves.
    """

    def __init__(self, run_state: RunState, state: dict, best_path: Path, monitor: str,
                 counted: dict[str, keras.callbacks.Callback]):
        super().__init__()
        self.run_state, self.state, self.best_path, self.counted = run_state, state, best_path, counted
        self.monitor = monitor
        self._started = 0.0

    def on_train_begin(self, logs=None):
        for name, callback in self.counted.items():
            for attribute, value in self.state.get("counters", {}).get(name, {}).items():
                setattr(callback, attribute, value)

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch, **{key: float(value) for key, value in (logs or {}).items()},
               "seconds": round(time.perf_counter() - self._started, 2)}
        best_before = min((previous[self.monitor] for previous in self.state["history"]), default=math.inf)
        if row[self.monitor] < best_before:  # NaN compares False: a NaN epoch is never the best.
            write_atomically(self.best_path, lambda path: self.model.save_weights(str(path)))
        counters = {name: {attribute: _plain(getattr(callback, attribute)) for attribute in _COUNTERS[name]}
                    for name, callback in self.counted.items()}
        self.state = {**self.state, "epoch": epoch + 1, "history": [*self.state["history"], row],
                      "counters": counters}
        self.run_state.write(self.model, self.state)


def _plain(value) -> int | float:
    """A callback's counter as JSON can hold it (Keras keeps some as numpy scalars)."""
    return int(value) if float(value).is_integer() and abs(float(value)) < 2**53 else float(value)


def train(config: TrainConfig, out_dir: Path | str, resume: bool = False,
          callbacks: Sequence = (), verbose: int = 1,
          strategy: tf.distribute.Strategy | None = None, prepare_map: bool = False) -> dict:
    """Train per ``config``, write ``<out_dir>/<name>.weights.h5`` and ``<name>.json``.

    Returns the model card. Raises ``TrainingDiverged`` (leaving ``out_dir``'s existing
    files untouched) when the loss becomes NaN or the model ends no better than drawing
    the average image, and ``ValueError`` when ``resume`` meets a run of another recipe or
    another process is training into ``out_dir`` (it holds ``folder_lock(out_dir)`` throughout).
    Extra Keras ``callbacks`` (a progress bar in a UI, say) are called after ours; an
    exception raised in one (a cancel button, say) ends the run with nothing written.
    ``strategy`` defaults to ``distribution_strategy()``. With ``prepare_map`` (the command
    line's runs), a 2-D model's map is prepared too (``_prepare_map``), before the lock is let
    go: a server moves a finished run into place only once its folder's lock is free.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with folder_lock(out_dir, wait=False) as ours:
        if not ours:
            raise ValueError(f"Another training is writing to {out_dir}; wait for it to end, or "
                             f"choose another --out.")
        card = _train(config, out_dir, resume, callbacks, verbose, strategy)
        if prepare_map and config.latent_dim == 2:
            _prepare_map(out_dir, config)
        return card


def _prepare_map(out_dir: Path, config: TrainConfig) -> None:
    """Compute and keep what the map's first view of the 2-D model saved in ``out_dir`` reads
    (``store.derive_map_data``), from the weights file as saved, so that the view encodes
    nothing. The model is whole without it: when the cache folder cannot be written, the map's
    first view computes it instead."""
    model = Autoencoder.from_folder(out_dir, 2, config.dataset, config.kind)
    try:
        store.derive_map_data(model, config.dataset)
    except OSError as error:
        print(f"warning: the map's data was not kept ({error}); the model's first map view "
              f"will compute it.", file=sys.stderr)


def _train(config: TrainConfig, out_dir: Path, resume: bool, callbacks: Sequence, verbose: int,
           strategy: tf.distribute.Strategy | None) -> dict:
    name = weights_stem(config.latent_dim, config.dataset, config.kind)
    work_dir = runs.work_dir(out_dir, config)
    if work_dir.exists() and not resume:
        shutil.rmtree(work_dir)  # A fresh run must not inherit an old run's state.
    run_state = RunState(work_dir)
    best_path = work_dir / "best.weights.h5"
    state = run_state.read()
    # A setting the saved state lacks (it predates the setting) counts as its default, None.
    changed = sorted(key for key, value in config.to_dict().items()
                     if state is not None and state["config"].get(key) != value)
    if changed:
        raise ValueError(f"Cannot resume: the interrupted run in {work_dir} used another recipe "
                         f"({', '.join(changed)} differ); rerun with its settings, or without --resume "
                         f"to start afresh.")
    parent_weights = None
    if state is None:
        state = {"config": config.to_dict(), "epoch": 0, "history": []}
        if config.continue_from:  # Kept in the state: a resumed run needs the parent's card, not its files.
            state["parent"], parent_weights = _parent(config)
    work_dir.mkdir(exist_ok=True)  # Only now: a refused run leaves no folder behind.

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()

    train_images, _ = load_mnist("train", config.dataset)
    test_images, test_labels = load_mnist("test", config.dataset)
    if config.train_subset is not None:
        train_images = train_images[: config.train_subset]
    umap_graph_seconds = None
    if config.kind == "umap":
        started = time.perf_counter()
        graph, umap_graph_seconds = kinds.cached_fuzzy_graph(
            train_images, config.umap_neighbors, config.umap_metric, config.seed, work_dir,
            {"train": data_fingerprints(config.dataset)["train"], "train_subset": config.train_subset})
        train_data = kinds.UmapEdgeData(train_images, graph, config.batch_size, config.umap_edges,
                                        config.umap_negatives, config.seed)
        umap_ab_params = kinds.umap_ab(config.umap_min_dist)
        if verbose:
            print(f"UMAP graph: {graph.nnz} edges, read or built in {time.perf_counter() - started:.0f} s")
    else:
        train_data = _EpochOrderedData(train_images, config.batch_size, config.seed)

    strategy = strategy or distribution_strategy()
    with strategy.scope():  # Variables made here are mirrored across the strategy's devices.
        autoencoder, encoder, decoder = build_autoencoder(config.latent_dim, config.latent,
                                                          config.latent_scale, config.latent_noise,
                                                          config.kind, config.encoder_hidden,
                                                          config.encoder_filters)
        optimizer_class = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}
        # The article passed lr= to compile(), which Keras rejects; the rate belongs to the optimiser.
        optimizer = optimizer_class[config.optimizer](config.learning_rate)
        if config.kind == "ae":
            model = autoencoder
            model.compile(optimizer=optimizer, loss="mse")
        else:  # Their losses are in their own train_step (ae_core/kinds.py).
            model = kinds.build_trainer(config, encoder, decoder,
                                        umap_ab_params if config.kind == "umap" else None)
            model.compile(optimizer=optimizer)
            model(test_images[:1])  # Builds it, so that saved weights can be loaded into it.
        if state["epoch"]:
            run_state.restore_weights(model, state)
        elif parent_weights is not None:
            autoencoder.load_weights(str(parent_weights))  # The encoder and decoder the trainer wraps.

    early_stopping, reduce_lr = _plateau_callbacks(config)
    our_callbacks = [train_data, keras.callbacks.TerminateOnNaN(), early_stopping, reduce_lr]
    if config.formation_sample:
        our_callbacks.insert(0, _LatentSnapshots(encoder, test_images[: config.formation_sample],
                                                 work_dir / "formation"))
    our_callbacks.append(_SaveState(run_state, state, best_path, config.monitor,
                                    {"early_stopping": early_stopping, "reduce_lr": reduce_lr}))
    stopped_early = state["epoch"] < config.epochs and _stopped_early(state, config)
    if state["epoch"] < config.epochs and not stopped_early:
        model.fit(train_data.dataset, validation_data=_test_dataset(test_images, config.eval_batch_size),
                        epochs=config.epochs, initial_epoch=state["epoch"], shuffle=False,  # epoch_order does
                        callbacks=our_callbacks + list(callbacks), verbose=verbose)

    history = (run_state.read() or state)["history"]  # This run's epochs; the parent's are in its card.
    losses = [row["loss"] for row in history] + [row["val_loss"] for row in history]
    losses += [row.get("val_mse", 0.0) for row in history]
    if not history or not all(math.isfinite(loss) for loss in losses) or not best_path.exists():
        # Keep the work dir: it shows what happened. The shipped weights are untouched.
        raise TrainingDiverged(
            f"Training diverged (the loss became NaN or infinite) after {len(history)} "
            f"epoch(s); lower --learning-rate. Existing weights in {out_dir} were left unchanged.",
            reason="nan")
    # Too few steps, or a rate so high that the ReLUs die, leaves a decoder that draws one
    # blurred average: anything no better than the average image has learned nothing.
    baseline = float(np.mean((test_images - train_images.mean(axis=0)) ** 2))
    # The epoch whose weights are kept is the best monitored loss (for the vae and umap kinds,
    # val_mse is the MSE of decoding the mean code).
    best_row = min(history, key=lambda row: row[config.monitor])
    best_val_mse = runs.epoch_mse(best_row)[1]
    if best_val_mse >= baseline:
        steps = len(history) * math.ceil(len(train_images) / config.batch_size)
        advice = ("lower --learning-rate" if config.learning_rate > HIGH_LEARNING_RATE else
                  "give it more steps: more --epochs or --train-subset, or a smaller --batch-size")
        raise TrainingDiverged(
            f"Training failed: the best val MSE {best_val_mse:.4f} after {steps} steps is no better "
            f"than drawing the average image ({baseline:.4f}); {advice}. Existing weights in "
            f"{out_dir} were left unchanged.", reason="no_better", best_val_mse=best_val_mse,
            baseline=baseline)

    # The best checkpoint also holds the optimiser's slots; the shipped file holds only the
    # model's own weights, saved from an uncompiled copy of the architecture.
    model.load_weights(best_path)  # The encoder and decoder are shared with ``autoencoder``.
    export, _, _ = build_autoencoder(config.latent_dim, config.latent, config.latent_scale,
                                     config.latent_noise, config.kind, config.encoder_hidden,
                                     config.encoder_filters)
    export.set_weights(autoencoder.get_weights())
    weights_path = out_dir / f"{name}.weights.h5"
    write_atomically(weights_path, lambda path: export.save_weights(str(path)))
    parent = state.get("parent") or {}
    whole_history = parent.get("history", []) + [
        {**row, "epoch": row["epoch"] + parent.get("epochs_run", 0)} for row in history]
    card = {
        "name": name,
        "kind": config.kind,
        "config": config.to_dict(),
        "latent_dim": config.latent_dim,
        "dataset": config.dataset,
        "data_fingerprints": data_fingerprints(config.dataset),
        "optimizer": config.optimizer,
        "learning_rate": config.learning_rate,
        "batch_size": config.batch_size,
        "train_images": int(len(train_images)),
        "epochs_run": len(whole_history),
        "best_val_mse": best_val_mse,
        "average_image_mse": baseline,
        "training_seconds": round(sum(row.get("seconds", 0.0) for row in whole_history), 1),
        **({"umap_graph_seconds": umap_graph_seconds + parent.get("umap_graph_seconds", 0.0)}
           if umap_graph_seconds is not None else {}),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "tfds_version": import_tfds().__version__,
        "weights_file": weights_path.name,
        "sha256": sha256_of(weights_path),
        "history": whole_history,
        "retrain_command": retrain_command(config, out_dir),
    }
    if parent:
        card["continued_from"] = {key: parent[key] for key in ("sha256", "epochs_run", "date")}
        card["retrain_command"] = f"{parent['retrain_command']} && {card['retrain_command']}"
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
    shutil.rmtree(work_dir)  # Only now: until the card exists, --resume can still finish the run.
    return card


# What must match for a model's weights to load into this run's model.
_ARCHITECTURE = ("latent", "latent_scale", "encoder_hidden", "encoder_filters")


def _parent(config: TrainConfig) -> tuple[dict, Path]:
    """The card and checked weights file of the model ``config.continue_from`` names."""
    folder = Path(config.continue_from)
    try:
        card, weights_path, _ = checked_autoencoder(folder, config.latent_dim, config.dataset, config.kind)
    except WeightsError as error:  # Its first sentence is the problem; the rest, a retrain command.
        problem = str(error).split(". ")[0].rstrip(".")
        raise ValueError(f"Cannot continue from {folder}: {problem}; pass the folder of a finished "
                         f"{config.kind} model of {config.latent_dim} dimensions on {config.dataset}.") from None
    parent_config = TrainConfig.from_dict(card["config"])
    differ = [key for key in _ARCHITECTURE if getattr(parent_config, key) != getattr(config, key)]
    if differ:
        flags = " ".join(word for key in differ for word in flag_words(key, getattr(parent_config, key)))
        raise ValueError(f"Cannot continue from {folder}: its model is built otherwise; pass its own {flags}.")
    return card, weights_path


def _plateau_callbacks(config: TrainConfig) -> tuple[keras.callbacks.EarlyStopping,
                                                     keras.callbacks.ReduceLROnPlateau]:
    """Early stopping and the rate cuts, both following ``config.monitor``."""
    return (keras.callbacks.EarlyStopping(monitor=config.monitor, patience=config.patience),
            keras.callbacks.ReduceLROnPlateau(monitor=config.monitor, factor=config.lr_factor,
                                              patience=config.lr_patience, min_lr=config.lr_min))


def _stopped_early(state: dict, config: TrainConfig) -> bool:
    """Whether a saved run had already been ended by early stopping before its last epoch."""
    wait = state.get("counters", {}).get("early_stopping", {}).get("wait", 0)
    return wait >= config.patience


class _LatentSnapshots(keras.callbacks.Callback):
    """Encodes a fixed sample after every epoch and saves the codes as ``epoch_NNN.npy``."""

    def __init__(self, encoder, images: np.ndarray, folder: Path):
        super().__init__()
        self.encoder, self.images, self.folder = encoder, images, folder
        folder.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        codes = self.encoder.predict(self.images, batch_size=1024, verbose=0)
        if isinstance(codes, list):  # A variational encoder: [mean, log_var]; the map shows the mean.
            codes = codes[0]
        np.save(self.folder / f"epoch_{epoch:03d}.npy", codes.astype(np.float32))


class RunStopped(RuntimeError):
    """Whoever may stop the run asked it to (``runs.request_stop``); nothing was written."""


class _Progress(keras.callbacks.Callback):
    """Reports the step, the loss and the images a second in ``<out>/progress.json`` from the
    first batch on, and stops the run at the next batch once ``<out>/stop`` exists.

    A thread rewrites the latest report every ``runs.PROGRESS_EVERY`` seconds, so that the
    report stays fresh through the pauses between batches too: TensorFlow preparing the
    validation step, the end-of-epoch saves.
    """

    def __init__(self, out_dir: Path, config: TrainConfig):
        super().__init__()
        self.out_dir, self.batch_size, self.latent_dim = out_dir, config.batch_size, config.latent_dim
        self.steps = runs.steps_per_epoch(config)
        self.validation_steps = math.ceil(runs.TEST_IMAGES / config.eval_batch_size)
        self.epoch = 0
        self.report: dict = {}
        self.rate_since = (0.0, 0)  # (time, step) where the current images-a-second window began
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.written = 0.0  # time.monotonic() of the last write

    def _set(self, **report) -> None:
        if runs.stop_requested(self.out_dir):
            raise RunStopped("The run was stopped at its owner's request; nothing was written.")
        with self.lock:
            self.report = report

    def _write(self) -> None:
        with self.lock:
            report, self.written = dict(self.report), time.monotonic()
        runs.write_progress(self.out_dir, **report)

    def _heartbeat(self) -> None:
        # A forced write (the first batch, the epoch's last) stands for a full period before the
        # heartbeat replaces it, so a page polling each second has a fair chance to show it.
        while not self.done.wait(runs.PROGRESS_EVERY):
            if time.monotonic() - self.written >= runs.PROGRESS_EVERY:
                self._write()

    def on_train_begin(self, logs=None):
        self._set(phase="the first steps (TensorFlow prepares the model)")
        self._write()
        threading.Thread(target=self._heartbeat, name="progress", daemon=True).start()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.rate_since = epoch, (time.monotonic(), 0)

    def on_train_batch_end(self, batch, logs=None):
        now, step = time.monotonic(), batch + 1
        since, since_step = self.rate_since
        rate = (step - since_step) * self.batch_size / (now - since) if now > since else 0.0
        if now - since >= 2 * runs.PROGRESS_EVERY:
            self.rate_since = (now, step)
        self._set(phase="training", epoch=self.epoch + 1, step=step, steps=self.steps,
                  loss=float((logs or {}).get("loss", math.nan)), images_per_second=rate)
        if step in (1, self.steps):
            self._write()  # The first batch is news at once; the last is the epoch's total.

    def on_test_begin(self, logs=None):
        self._set(phase="validating", epoch=self.epoch + 1, step=0, steps=self.validation_steps)

    def on_test_batch_end(self, batch, logs=None):
        self._set(phase="validating", epoch=self.epoch + 1, step=batch + 1, steps=self.validation_steps)

    def on_epoch_end(self, epoch, logs=None):
        self._set(phase=f"saving epoch {epoch + 1}")

    def on_train_end(self, logs=None):
        self.done.set()
        self._set(phase="saving the model" if self.latent_dim != 2 else
                  "saving the model and encoding the test images for its map")
        self._write()


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; exits 0 on success, 2 on bad settings, else one of ``runs.EXIT_CODES``."""
    parser = argparse.ArgumentParser(prog="python -m ae_core.train", description=__doc__.split("\n")[0])
    TrainConfig.add_arguments(parser)
    parser.add_argument("--out", default="weights/", help="folder for the weights and card")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from its last finished epoch")
    parser.add_argument("--progress", action="store_true",
                        help="report progress in <out>/progress.json and stop when <out>/stop appears "
                             "(the Train page's runs)")
    args = parser.parse_args(argv)
    try:
        config = TrainConfig.from_namespace(args)
        callbacks = []
        if args.progress:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            runs.write_progress(args.out, phase="loading the data and building the model")
            callbacks.append(_Progress(Path(args.out), config))
        card = train(config, args.out, resume=args.resume, callbacks=callbacks,
                     verbose=1 if sys.stdout.isatty() else 2, prepare_map=True)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return runs.EXIT_CODES[error.reason]
    except RunStopped as error:
        print(f"error: {error}", file=sys.stderr)
        return runs.EXIT_CODES["stopped"]
    print(f"wrote {Path(args.out) / card['weights_file']}: best val MSE "
          f"{card['best_val_mse']:.4f} after {card['epochs_run']} epoch{'s' if card['epochs_run'] != 1 else ''} "
          f"({card['training_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
