"""Real training runs on small MNIST subsets: weights, cards, resume, divergence, seeds."""

import csv
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import QUICK, ROOT


def test_run_writes_weights_and_card_that_reload(quick_run, test_set):
    from ae_core import Autoencoder
    from ae_core.cards import sha256_of
    from ae_core.evaluate import test_mse

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
    assert test_mse(model, images) == pytest.approx(card["best_val_mse"], rel=1e-3)
    assert card["best_val_mse"] < card["average_image_mse"]


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


def _history_rows(path):
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_kill_9_then_resume_finishes_the_run(tmp_path):
    """A real process is killed with SIGKILL mid-run; --resume completes the epochs asked for."""
    epochs = 4
    log = tmp_path / ".train-autoencoder_mnist_z2" / "history.csv"
    process = subprocess.Popen(_train_command(tmp_path, "--epochs", str(epochs)), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while len(_history_rows(log)) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    time.sleep(np.random.default_rng().uniform(0, 1.5))  # Somewhere inside the next epoch.
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before_kill = len(_history_rows(log))
    assert 2 <= finished_before_kill < epochs, "the kill must land mid-run"
    assert not (tmp_path / "autoencoder_mnist_z2.weights.h5").exists()

    resumed = subprocess.run(_train_command(tmp_path, "--epochs", str(epochs), "--resume"),
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    card = json.loads((tmp_path / "autoencoder_mnist_z2.json").read_text())
    # Every finished epoch was kept and the run did only the epochs that were missing.
    assert card["epochs_run"] == epochs
    assert [int(row["epoch"]) for row in card["history"]] == list(range(epochs))
    assert f"Epoch {finished_before_kill + 1}/{epochs}" in resumed.stdout
    assert f"Epoch 1/{epochs}" not in resumed.stdout

    from ae_core import Autoencoder
    model = Autoencoder.from_folder(tmp_path, latent_dim=2)
    assert model.decode(np.zeros((1, 2))).shape == (1, 28, 28, 1)


def test_divergent_run_exits_nonzero_and_keeps_the_weights(quick_copy):
    folder, _ = quick_copy
    weights = folder / "autoencoder_mnist_z2.weights.h5"
    card = folder / "autoencoder_mnist_z2.json"
    before = weights.read_bytes(), card.read_bytes()
    result = subprocess.run(
        _train_command(folder, "--epochs", "1", "--optimizer", "rmsprop", "--learning-rate", "1e12"),
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
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


def test_same_seed_gives_identical_weights(tmp_path):
    from ae_core.config import TrainConfig
    from ae_core.train import train

    config = TrainConfig(latent_dim=2, seed=7, **QUICK)
    first = tmp_path / "first"
    second = tmp_path / "second"
    cards = [train(config, folder, verbose=0) for folder in (first, second)]
    assert cards[0]["sha256"] == cards[1]["sha256"]
    assert (first / "autoencoder_mnist_z2.weights.h5").read_bytes() == \
        (second / "autoencoder_mnist_z2.weights.h5").read_bytes()
