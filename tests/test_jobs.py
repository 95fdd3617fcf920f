"""Training in the background (ae_core.jobs) and under a tf.distribute strategy.

These are real runs on small MNIST subsets; the app's Train page is a thin form over them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from ae_core import TrainConfig, available_models, load_autoencoder
from ae_core.inference import load_formation
from ae_core.jobs import Trainer, TrainerBusy, check_name

from conftest import ROOT

# One epoch on 5,000 images in batches of 32 learns clearly more than the average image.
SMALL = dict(train_subset=5000, batch_size=32, formation_sample=300)


@pytest.fixture
def models(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_MODELS_DIR", str(tmp_path / "trained"))
    return tmp_path / "trained"


def _wait(job, until, timeout: float = 300.0):
    deadline = time.monotonic() + timeout
    while not until(job.progress()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"training did not get there: {job.progress()}")
        time.sleep(0.2)
    return job.progress()


def test_a_finished_run_becomes_a_selectable_model_with_its_formation(models, test_set):
    job = Trainer().start(TrainConfig(epochs=2, **SMALL), "first-try")
    progress = job.join(timeout=600)
    assert progress.status == "done", progress.message
    assert [row["epoch"] for row in progress.history] == [1, 2]
    assert sorted(os.listdir(models)) == ["first-try"]  # No staging folder left behind.
    assert available_models("mnist") == ["shipped", "first-try"]
    assert available_models("fashion_mnist")[-1:] != ["first-try"]  # Listed for its own dataset only.

    model = load_autoencoder(2, "mnist", "first-try")
    images, labels = test_set
    assert model.card["config"]["train_subset"] == 5000 and model.card["replicas"] == 1
    # The card's val MSE is what the loaded weights give on the test set.
    val_mse = float(np.mean((model.reconstruct(images) - images) ** 2))
    assert val_mse == pytest.approx(model.card["best_val_mse"], rel=1e-3)
    formation = load_formation("mnist", "first-try")
    assert formation["codes"].shape == (2, 300, 2)
    assert np.array_equal(formation["labels"], labels[:300])
    # The last epoch's record is where the final model puts those images (best = last here).
    best = int(np.argmin(formation["val_loss"]))
    assert np.allclose(formation["codes"][best], model.encode(images[:300]), atol=1e-4)


def test_cancel_leaves_nothing_and_one_run_at_a_time(models):
    trainer = Trainer()
    job = trainer.start(TrainConfig(epochs=20, **SMALL), "too-long")
    with pytest.raises(TrainerBusy, match="only one runs at a time"):
        trainer.start(TrainConfig(epochs=1, **SMALL), "second")
    _wait(job, lambda progress: progress.epoch >= 1)  # Mid-run, with files being written.
    job.cancel()
    progress = job.join(timeout=120)
    assert progress.status == "cancelled" and "nothing was saved" in progress.message
    assert os.listdir(models) == []  # Neither the model nor its staging folder.
    assert available_models("mnist") == ["shipped"]


@pytest.mark.parametrize("name, problem", [("Bad Name", "cannot be used"), ("../up", "cannot be used"),
                                           ("", "cannot be used"), ("shipped", "already exists")])
def test_bad_or_taken_names_are_refused_with_the_rule(tmp_path, name, problem):
    with pytest.raises(ValueError, match=problem):
        check_name(name, tmp_path)


def test_a_taken_name_is_refused(models):
    (models / "taken").mkdir(parents=True)
    with pytest.raises(ValueError, match="already exists"):
        Trainer().start(TrainConfig(epochs=1, **SMALL), "taken")


MIRRORED_CHILD = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from ae_core import TrainConfig
from ae_core.train import train
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
card = train(TrainConfig(epochs=2, train_subset=5000, batch_size=32), sys.argv[1], verbose=0,
             strategy=strategy)
print(json.dumps({"replicas": card["replicas"], "val": card["best_val_mse"], "base": card["average_image_mse"]}))
"""


def test_training_runs_under_a_mirrored_strategy(tmp_path):
    """Two logical CPUs stand in for two GPUs: the same code path MirroredStrategy takes."""
    result = subprocess.run([sys.executable, "-c", MIRRORED_CHILD, str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2 and report["val"] < report["base"]
    assert (tmp_path / "autoencoder_mnist_z2.weights.h5").exists()
