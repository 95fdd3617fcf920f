"""Real training runs on small MNIST subsets: weights, cards, resume, divergence, seeds."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import QUICK, ROOT

pytestmark = pytest.mark.slow


def test_run_writes_weights_and_card_that_reload(quick_run, test_set):
    from ae_core import Autoencoder
    from ae_core.cards import sha256_of
    from ae_core.evaluate import mean_squared_error

    out_dir, card = quick_run
    weights = out_dir / "autoencoder_mnist_z2.weights.h5"
    assert json.loads((out_dir / "autoencoder_mnist_z2.json").read_text()) == card
    for field in ("latent_dim", "optimizer", "learning_rate", "batch_size", "epochs_run",
                  "best_val_mse", "training_seconds", "date", "tensorflow_version",
                  "keras_version", "tfds_version", "sha256"):
        assert field in card
    assert card["sha256"] == sha256_of(weights)
    assert card["epochs_run"] == QUICK["epochs"] and len(card["history"]) == QUICK["epochs"]
    assert not list(out_dir.glob(".train-*")) and not list(out_dir.glob(".tmp-*"))

    model = Autoencoder.from_folder(out_dir, latent_dim=2)
    images, _ = test_set
    # The reloaded weights reproduce the validation loss recorded during training.
    assert mean_squared_error(model, images) == pytest.approx(card["best_val_mse"], rel=1e-3)
    assert card["best_val_mse"] < card["average_image_mse"]


def test_the_monitor_chooses_the_kept_weights_and_the_rate_cuts(tmp_path):
    """A one-weight model learns y = 2x while it is validated against y = -2x, so its training
    loss falls at every epoch and its val_loss rises: following val_loss keeps the first
    epoch and cuts the rate once val_loss has stalled; following the loss keeps the last
    epoch and never cuts."""
    import keras

    from ae_core.config import TrainConfig
    from ae_core.train import RunState, _plateau_callbacks, _SaveState

    x = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]
    for monitor, kept_epoch in (("val_loss", 0), ("loss", 5)):
        config = TrainConfig(monitor=monitor, learning_rate=0.05, lr_patience=2, patience=100)
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False,
                                                                        kernel_initializer="zeros")])
        model.compile(optimizer=keras.optimizers.SGD(config.learning_rate), loss="mse")
        folder = tmp_path / monitor
        folder.mkdir()
        early_stopping, reduce_lr = _plateau_callbacks(config)
        save_state = _SaveState(RunState(folder), {"epoch": 0, "history": []}, folder / "best.weights.h5",
                                monitor, {"early_stopping": early_stopping, "reduce_lr": reduce_lr})
        model.fit(x, 2 * x, validation_data=(x, -2 * x), epochs=6, batch_size=64, shuffle=False,
                  callbacks=[early_stopping, reduce_lr, save_state], verbose=0)
        history = RunState(folder).read()["history"]
        assert [row["loss"] for row in history] == sorted((row["loss"] for row in history), reverse=True)
        assert [row["val_loss"] for row in history] == sorted(row["val_loss"] for row in history)
        model.load_weights(str(folder / "best.weights.h5"))
        assert model.evaluate(x, -2 * x, verbose=0) == pytest.approx(history[kept_epoch]["val_loss"], rel=1e-5)
        rates = [row["learning_rate"] for row in history]
        if monitor == "loss":
            assert rates == pytest.approx([0.05] * 6)
        else:  # Epoch 0 is the best: the rate is halved after each two epochs that do no better.
            assert rates == pytest.approx([0.05] * 3 + [0.025] * 2 + [0.0125])


def test_a_continued_run_starts_from_its_parent_and_its_card_tells_the_whole_story(quick_run, tmp_path):
    """At a rate too small to move them, one more epoch keeps the parent's trainable weights
    (the latent's batch statistics still move), where a run from random ones would not."""
    import dataclasses
    import shlex

    from ae_core import Autoencoder
    from ae_core.cards import sha256_of
    from ae_core.config import TrainConfig
    from ae_core.train import train

    parent_folder, parent = quick_run
    config = dataclasses.replace(TrainConfig.from_dict(parent["config"]), epochs=1, learning_rate=1e-9,
                                 lr_min=1e-9, continue_from=str(parent_folder))
    card = train(config, tmp_path, verbose=0)
    models = [Autoencoder.from_folder(folder, latent_dim=2) for folder in (parent_folder, tmp_path)]
    weights = [[variable.numpy() for part in (model._encoder, model._decoder) for variable in part.trainable_weights]
               for model in models]
    assert max(float(np.abs(before - after).max()) for before, after in zip(*weights)) < 1e-6
    assert card["history"][:-1] == parent["history"]
    assert [row["epoch"] for row in card["history"]] == list(range(QUICK["epochs"] + 1))
    assert card["epochs_run"] == QUICK["epochs"] + 1
    assert card["training_seconds"] == pytest.approx(
        parent["training_seconds"] + card["history"][-1]["seconds"], abs=0.1)
    assert card["continued_from"] == {"sha256": sha256_of(parent_folder / "autoencoder_mnist_z2.weights.h5"),
                                      "epochs_run": QUICK["epochs"], "date": parent["date"]}
    first, second = card["retrain_command"].split(" && ")
    assert first == parent["retrain_command"]
    assert TrainConfig.from_flags(shlex.split(second)[3:-2]) == config


def test_a_run_continues_only_a_model_it_can_load(quick_run, tmp_path):
    import dataclasses

    from ae_core.config import TrainConfig
    from ae_core.train import train

    parent_folder, parent = quick_run
    config = dataclasses.replace(TrainConfig.from_dict(parent["config"]), epochs=1)
    with pytest.raises(ValueError, match=r"is built otherwise; pass its own --encoder-filters 8\.$"):
        train(dataclasses.replace(config, encoder_filters=4, continue_from=str(parent_folder)), tmp_path, verbose=0)
    with pytest.raises(ValueError, match="Cannot continue from .*: .* is missing; pass the folder of a finished ae"):
        train(dataclasses.replace(config, continue_from=str(tmp_path / "nothing")), tmp_path, verbose=0)
    assert not list(tmp_path.glob("*.json")) and not list(tmp_path.glob(".train-*"))


def test_altered_or_truncated_weights_are_refused(quick_copy):
    from ae_core import Autoencoder, WeightsError

    folder, _ = quick_copy
    weights = folder / "autoencoder_mnist_z2.weights.h5"
    original = weights.read_bytes()
    weights.write_bytes(original[: len(original) // 2])
    with pytest.raises(WeightsError, match="python -m ae_core.train"):
        Autoencoder.from_folder(folder, latent_dim=2)
    altered = bytearray(original)
    altered[len(altered) // 2] ^= 0xFF
    weights.write_bytes(bytes(altered))
    with pytest.raises(WeightsError, match="does not match the SHA-256"):
        Autoencoder.from_folder(folder, latent_dim=2)
    weights.unlink()
    with pytest.raises(WeightsError, match="missing"):
        Autoencoder.from_folder(folder, latent_dim=2)


def test_card_without_its_recipe_is_refused(quick_copy):
    from ae_core import Autoencoder, WeightsError

    folder, card = quick_copy
    (folder / "autoencoder_mnist_z2.json").write_text(json.dumps({**card, "config": {}}))
    with pytest.raises(WeightsError, match="does not say how its latent was built"):
        Autoencoder.from_folder(folder, latent_dim=2)


def test_missing_card_is_refused_with_the_command(tmp_path):
    from ae_core import Autoencoder, WeightsError

    with pytest.raises(WeightsError, match="--latent-dim 10"):
        Autoencoder.from_folder(tmp_path, latent_dim=10)


def _train_command(out_dir, *extra):
    return [sys.executable, "-m", "ae_core.train", "--latent-dim", "2", "--out", str(out_dir),
            "--train-subset", str(QUICK["train_subset"]), "--batch-size", str(QUICK["batch_size"]),
            "--seed", "3", *extra]


# Trains like the CLI, but kills itself with SIGKILL at a chosen moment: mid-epoch 2, or
# after the last epoch and before the weights and card are written.
KILLED_CHILD = """
import os, signal, sys, keras
from ae_core.config import TrainConfig
from ae_core.train import train

class KillAt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if sys.argv[2] == "mid-epoch-2" and self.epoch == 1 and batch == 40:
            os.kill(os.getpid(), signal.SIGKILL)
    def on_train_end(self, logs=None):
        if sys.argv[2] == "after-the-last-epoch":
            os.kill(os.getpid(), signal.SIGKILL)

train(TrainConfig.from_flags(sys.argv[3:]), sys.argv[1], callbacks=[KillAt()], verbose=0)
"""
RESUME_FLAGS = ["--epochs", "3", "--train-subset", "3000", "--batch-size", "32", "--seed", "3"]


def _weights(folder):
    from ae_core import Autoencoder

    model = Autoencoder.from_folder(folder, latent_dim=2)
    return [w.tobytes() for w in model._encoder.get_weights() + model._decoder.get_weights()]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    result = subprocess.run([sys.executable, "-m", "ae_core.train", *RESUME_FLAGS, "--out", str(folder)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return folder


def _killed_run(folder, moment):
    result = subprocess.run([sys.executable, "-c", KILLED_CHILD, str(folder), moment, *RESUME_FLAGS],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert not (folder / "autoencoder_mnist_z2.json").exists()


def _resume(folder, *extra):
    return subprocess.run([sys.executable, "-m", "ae_core.train", *RESUME_FLAGS, *extra, "--out", str(folder),
                           "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_gives_the_uninterrupted_weights(tmp_path, uninterrupted):
    _killed_run(tmp_path, "mid-epoch-2")
    state = json.loads((tmp_path / ".train-autoencoder_mnist_z2" / "state.json").read_text())
    assert state["epoch"] == 1  # Epoch 1 was saved; epoch 2 was lost mid-way.

    # Another recipe is refused, in one sentence, and the saved run is left as it was.
    other = _resume(tmp_path, "--latent", "linear")
    [error] = [line for line in other.stderr.splitlines() if line.startswith("error: ")]
    assert other.returncode == 2 and "another recipe (latent differ)" in error
    assert error.count(". ") == 0 and error.endswith(".")

    resumed = _resume(tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Epoch 2/3" in resumed.stdout and "Epoch 1/3" not in resumed.stdout
    card = json.loads((tmp_path / "autoencoder_mnist_z2.json").read_text())
    assert [row["epoch"] for row in card["history"]] == [0, 1, 2]
    # Byte for byte the uninterrupted run's file, which another process wrote with the same
    # seed: a run is reproducible, and a resume does not change it.
    name = "autoencoder_mnist_z2.weights.h5"
    assert (tmp_path / name).read_bytes() == (uninterrupted / name).read_bytes()
    assert not (tmp_path / ".train-autoencoder_mnist_z2").exists()


@pytest.mark.slow
def test_kill_9_after_the_last_epoch_then_resume_writes_the_card_without_training(tmp_path, uninterrupted):
    _killed_run(tmp_path, "after-the-last-epoch")
    resumed = _resume(tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Epoch " not in resumed.stdout  # Nothing was trained again.
    card = json.loads((tmp_path / "autoencoder_mnist_z2.json").read_text())
    assert card["epochs_run"] == 3 and [row["epoch"] for row in card["history"]] == [0, 1, 2]
    assert _weights(tmp_path) == _weights(uninterrupted)


def test_every_setting_is_a_flag_and_the_card_command_rebuilds_its_config(quick_run):
    import dataclasses
    import shlex

    from ae_core.config import TrainConfig
    from ae_core.train import main

    _, card = quick_run
    words = shlex.split(card["retrain_command"])
    assert words[:3] == ["python", "-m", "ae_core.train"] and words[-2] == "--out"
    assert TrainConfig.from_flags(words[3:-2]).to_dict() == card["config"]
    help_text = subprocess.run([sys.executable, "-m", "ae_core.train", "--help"], cwd=ROOT,
                               capture_output=True, text=True, timeout=120).stdout
    for item in dataclasses.fields(TrainConfig):
        assert "--" + item.name.replace("_", "-") in help_text
    assert main(["--lr-factor", "2"]) == 2  # Checked by TrainConfig, refused in one line.


def test_divergent_run_exits_nonzero_and_keeps_the_weights(quick_copy):
    folder, _ = quick_copy
    weights = folder / "autoencoder_mnist_z2.weights.h5"
    card = folder / "autoencoder_mnist_z2.json"
    before = weights.read_bytes(), card.read_bytes()
    result = subprocess.run(
        _train_command(folder, "--epochs", "1", "--optimizer", "rmsprop", "--learning-rate", "1e12"),
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode in (3, 4)  # EXIT_CODES: it learned nothing usable.
    assert "lower --learning-rate" in result.stderr
    assert (weights.read_bytes(), card.read_bytes()) == before


def test_nan_loss_stops_the_run_and_keeps_the_weights(quick_copy):
    """A NaN injected into the weights mid-run (standing in for an overflow) ends the run."""
    import keras

    from ae_core.config import TrainConfig
    from ae_core.train import TrainingDiverged, train

    folder, _ = quick_copy
    weights = folder / "autoencoder_mnist_z2.weights.h5"
    before = weights.read_bytes()

    class PoisonWeights(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 5:
                # The output layer's kernel: a ReLU would turn NaN into 0, a sigmoid cannot.
                kernel = self.model.get_layer("decoder").get_layer("decoder_out").kernel
                kernel.assign(np.full(kernel.shape, np.nan, dtype=np.float32))

    with pytest.raises(TrainingDiverged, match="NaN"):
        train(TrainConfig(latent_dim=2, seed=1, **QUICK), folder, callbacks=[PoisonWeights()], verbose=0)
    assert weights.read_bytes() == before


def test_a_run_whose_map_cannot_be_kept_still_writes_its_model(tmp_path):
    """What the map reads is the cache folder's: when it cannot be written, the run warns and
    its model is whole, to be encoded by the map's first view instead."""
    from ae_core import Autoencoder

    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    result = subprocess.run(_train_command(tmp_path / "out", "--epochs", "2"), cwd=ROOT, capture_output=True,
                            text=True, timeout=600, env={**os.environ, "AE_CACHE_DIR": str(blocked)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "warning: the map's data was not kept" in result.stderr
    assert Autoencoder.from_folder(tmp_path / "out", latent_dim=2).card["epochs_run"] == 2
