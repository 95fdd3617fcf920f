"""Trainings from the browser (ae_core.jobs): real runs of ``python -m ae_core.train`` in
processes of their own, owned, budgeted, locked by name, and recovered after a server crash.
The Train page is a thin form over these; a "server" below is a Python process holding a
Trainer, as the app does."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from ae_core import TrainConfig, available_models, load_autoencoder
from ae_core.inference import load_formation
from ae_core import runs
from ae_core.jobs import (MIN_STEPS, Trainer, TrainerBusy, check_name, discard, failure_advice, leftovers, live_runs,
                          stop_run)
from ae_core.runs import total_steps

from conftest import ROOT

# The smallest run the Train page allows: one epoch of 10,000 images in batches of 32.
SMALL = dict(train_subset=10_000, batch_size=32, formation_sample=300)



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


@pytest.mark.slow
def test_the_smallest_run_the_page_allows_succeeds_and_becomes_a_model(models, test_set):
    config = TrainConfig(epochs=1, learning_rate=3e-4, **SMALL)  # The form's lowest rate, too.
    assert total_steps(config) >= MIN_STEPS
    with pytest.raises(ValueError, match="choose more epochs or images, or a smaller batch"):
        Trainer().start(TrainConfig(epochs=1, train_subset=5000, batch_size=32), "too-short", "me")
    job = Trainer().start(config, "first-try", owner="me")
    progress = job.join(timeout=600)
    assert progress.status == "done", progress.message
    assert sorted(os.listdir(models)) == ["first-try"]  # No staging folder left behind.
    assert available_models("mnist") == ["shipped", "first-try"]
    assert available_models("fashion_mnist")[-1:] != ["first-try"]  # Listed for its own dataset only.

    model = load_autoencoder(2, "mnist", "first-try")
    images, labels = test_set
    assert model.card["config"]["train_subset"] == 10_000 and model.card["replicas"] == 1
    # The card's val MSE is what the loaded weights give on the test set.
    val_mse = float(np.mean((model.reconstruct(images) - images) ** 2))
    assert val_mse == pytest.approx(model.card["best_val_mse"], rel=1e-3)
    assert val_mse < model.card["average_image_mse"]
    formation = load_formation("mnist", "first-try")
    assert formation["codes"].shape == (1, 300, 2) and np.array_equal(formation["labels"], labels[:300])
    assert np.allclose(formation["codes"][0], model.encode(images[:300]), atol=1e-4)


# What the map's first view of a model reads, in a process that has not imported TensorFlow.
READ_MAP = """
import sys
import numpy as np
from ae_core import store
data = store.map_data("mnist", sys.argv[1])
assert "tensorflow" not in sys.modules, "reading the map's data imported TensorFlow"
np.savez(sys.argv[2], latents=data.latents, labels=data.labels, errors=data.errors)
"""


@pytest.mark.slow
def test_a_trained_models_map_is_ready_as_soon_as_it_is_saved(models, tmp_path, monkeypatch, test_set):
    from ae_core import store
    from ae_core.export import decoder_bundle

    monkeypatch.setenv("AE_CACHE_DIR", str(tmp_path / "cache"))
    job = Trainer().start(TrainConfig(epochs=1, **SMALL), "ready", owner="me")
    progress = job.join(timeout=600)
    assert progress.status == "done", progress.message
    # No page has been opened: the training process wrote these.
    model = load_autoencoder(2, "mnist", "ready")
    folder = store.derived_folder("mnist", model.card)
    assert sorted(path.name for path in folder.iterdir()) == ["decoder.bin", "map.npz"]
    result = subprocess.run([sys.executable, "-c", READ_MAP, "ready", str(tmp_path / "read.npz")], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    read = np.load(tmp_path / "read.npz")
    images, labels = test_set
    assert np.allclose(read["latents"], model.encode(images), atol=1e-5)
    assert np.array_equal(read["labels"], labels)
    own_errors = np.mean((model.reconstruct(images) - images).reshape(len(images), -1) ** 2, axis=1)
    assert np.allclose(read["errors"], own_errors, atol=1e-6)
    # The assets the map's first view names are there too, under the names of their bytes.
    bundle = decoder_bundle(model)
    points = store.points_blob(store.MapData(read["latents"], read["labels"], read["errors"], bundle))
    for blob in (bundle, points):
        assert store.asset_path(f"{hashlib.sha256(blob).hexdigest()[:32]}.bin") is not None


@pytest.mark.slow
def test_only_the_owner_cancels_and_one_run_at_a_time(models):
    trainer = Trainer()
    job = trainer.start(TrainConfig(epochs=20, train_subset=3_500, batch_size=32), "too-long", owner="alice")
    with pytest.raises(TrainerBusy, match="only one runs at a time"):
        trainer.start(TrainConfig(epochs=1, **SMALL), "second", owner="bob")
    _wait(job, lambda progress: progress.epoch >= 1)  # Mid-run, with files being written.
    assert job.cancel("bob") is False and job.running  # Another visitor cannot stop it.
    assert job.cancel("alice") is True
    progress = job.join(timeout=120)
    assert progress.status == "cancelled" and "nothing was saved" in progress.message
    assert os.listdir(models) == []  # Neither the model nor its staging folder.
    assert not psutil.pid_exists(job._process.pid) or psutil.Process(job._process.pid).status() == "zombie"


@pytest.mark.parametrize("name, problem", [("Bad Name", "cannot be used"), ("../up", "cannot be used"),
                                           ("", "cannot be used"), ("shipped", "already exists")])
def test_bad_or_taken_names_are_refused_with_the_rule(tmp_path, name, problem):
    with pytest.raises(ValueError, match=problem):
        check_name(name, tmp_path)


def test_a_run_over_the_budget_is_refused(models, monkeypatch):
    monkeypatch.setenv("AE_TRAIN_BUDGET", "100000")
    with pytest.raises(ValueError, match="over this server's budget of 100,000 per run"):
        Trainer().start(TrainConfig(epochs=2, train_subset=60_000), "greedy", owner="me")
    assert not models.exists() or os.listdir(models) == []


# A server that trains back to back. Its runs are half the page's smallest (157 steps, which
# still beat the average image here): what grows or not is the server, whatever the run's size.
SERVER = """
import json, os, sys, time, psutil
from ae_core import TrainConfig, jobs
from ae_core.jobs import Trainer
jobs.MIN_STEPS = 150
trainer, rss = Trainer(), []
for run in range(int(sys.argv[1])):
    job = trainer.start(TrainConfig(epochs=1, train_subset=5_000, batch_size=32), f"run-{run}", "me")
    progress = job.join(timeout=600)
    assert progress.status == "done", progress.message
    rss.append(psutil.Process().memory_info().rss)
print(json.dumps(rss))
"""


@pytest.fixture
def doomed_python(tmp_path, monkeypatch):
    """A stand-in for ``python -m ae_core.train`` that fails as it does: an ``error:`` line, exit 2."""
    stand_in = tmp_path / "python"
    stand_in.write_text("#!/bin/sh\necho 'Epoch 1/1'\necho 'error: The data is missing; set AE_DATA_DIR.' >&2\nexit 2\n")
    stand_in.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(stand_in))


def test_a_failed_run_says_its_logs_error_sentence(models, doomed_python):
    """The page shows a failed run's own sentence, read from its log before its folder goes."""
    config = TrainConfig(epochs=1, **SMALL)
    progress = Trainer().start(config, "doomed", owner="me").join(timeout=60)
    assert (progress.status, progress.message) == ("failed", "The data is missing; set AE_DATA_DIR.")
    assert failure_advice(progress, config) == (
        "The data is missing; set AE_DATA_DIR. The server's log has the details.")  # As the page says it.
    assert os.listdir(models) == []  # Nothing half-made is left.


def test_the_train_page_says_how_its_failed_run_ended(models, doomed_python):
    """A failed run leaves no folder; its link (?run=&key=) must still show its end and its
    sentence, not be dropped as a run unknown to this server (as it once was)."""
    from streamlit.testing.v1 import AppTest

    from ui import state

    key = "k" * 16
    try:
        assert state.trainer().start(TrainConfig(epochs=1, **SMALL), "doomed", key).join(timeout=60).status == "failed"
        app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        app.switch_page("pages/train.py")
        app.query_params["run"], app.query_params["key"] = "doomed", key
        app.run()
    finally:
        state.trainer.clear()  # The page's trainer, shared with the module's other tests.
    assert "doomed: failed" in [subheader.value for subheader in app.subheader]
    assert [error.value for error in app.error] == [
        "The data is missing; set AE_DATA_DIR. The server's log has the details."]
    assert dict(app.query_params) == {"run": "doomed", "key": key}  # Kept, not dropped as unknown.


@pytest.mark.slow
def test_server_memory_does_not_grow_with_trainings(models):
    """Three back-to-back trainings: each runs in its own process, so the server stays as it
    was (a leak of a training's size in the server would show after the second)."""
    result = subprocess.run([sys.executable, "-c", SERVER, "3"], cwd=ROOT, capture_output=True, text=True,
                            timeout=1200, env={**os.environ, "AE_MODELS_DIR": str(models)})
    assert result.returncode == 0, result.stderr[-3000:]
    rss = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(rss) == 3 and len(os.listdir(models)) == 3
    assert max(rss) - rss[0] <= 50 * 2**20, [round(value / 2**20) for value in rss]


RACE = """
import sys, time
from ae_core import TrainConfig
from ae_core.jobs import Trainer, TrainerBusy
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))  # Both servers start at this moment.
try:
    job = Trainer().start(TrainConfig(epochs=1, train_subset=10_000, batch_size=32), "twin", sys.argv[2])
except (ValueError, TrainerBusy) as error:
    print("refused:", error)
else:
    print("started:", job.join(timeout=600).status)
"""


@pytest.mark.slow
def test_two_servers_starting_one_name_at_once_get_one_run_and_one_sentence(models):
    at = time.time() + 3
    servers = [subprocess.Popen([sys.executable, "-c", RACE, str(at), owner], cwd=ROOT, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "AE_MODELS_DIR": str(models)})
               for owner in ("left", "right")]
    outputs = sorted(server.communicate(timeout=600)[0].strip().splitlines()[-1] for server in servers)
    assert outputs[0].startswith("refused: A ") and outputs[0].count(". ") == 0, outputs
    assert outputs[1] == "started: done", outputs
    assert sorted(os.listdir(models)) == ["twin"]
    # A third server sharing the folder (this process, as a replica would) lists it and loads it.
    assert available_models("mnist") == ["shipped", "twin"]
    assert load_autoencoder(2, "mnist", "twin").card["config"]["train_subset"] == 10_000


KILLED_SERVER = """
import sys, time
from ae_core import TrainConfig
from ae_core.jobs import Trainer
job = Trainer().start(TrainConfig(epochs=3, train_subset=3_500, batch_size=32), sys.argv[1], "me")
print(job._process.pid, flush=True)
time.sleep(3600)
"""


def _start_a_server_training(models, name):
    server = subprocess.Popen([sys.executable, "-c", KILLED_SERVER, name], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, env={**os.environ, "AE_MODELS_DIR": str(models)})
    child = int(server.stdout.readline())
    state = models / f".staging-{name}" / ".train-autoencoder_mnist_z2" / "state.json"
    deadline = time.monotonic() + 300
    while not (state.exists() and json.loads(state.read_text())["epoch"] >= 1):
        assert time.monotonic() < deadline, "no epoch finished"
        time.sleep(0.2)
    return server, child


def _wait_until_gone(pid: int, timeout: float = 60) -> None:
    try:
        psutil.Process(pid).wait(timeout=timeout)
    except psutil.NoSuchProcess:
        pass


@pytest.mark.slow
def test_a_server_killed_mid_training_offers_resume_and_discard(models):
    for name in ("to-resume", "to-discard"):
        server, child = _start_a_server_training(models, name)
        server.send_signal(signal.SIGKILL)  # The server and its training die together,
        os.killpg(child, signal.SIGKILL)    # as in a power cut or an out-of-memory kill.
        server.wait()
        _wait_until_gone(child)
    found = {leftover.name: leftover for leftover in leftovers(models)}
    assert sorted(found) == ["to-discard", "to-resume"]
    assert found["to-resume"].epoch >= 1 and found["to-resume"].config.epochs == 3

    discard(found["to-discard"], models)
    job = Trainer().resume(found["to-resume"], owner="me")
    progress = job.join(timeout=600)
    log = models / ".staging-to-resume" / "train.log"
    assert progress.status == "done", (progress.message, log.exists() and log.read_text()[-4000:])
    assert sorted(os.listdir(models)) == ["to-resume"]
    card = load_autoencoder(2, "mnist", "to-resume").card
    assert [row["epoch"] for row in card["history"]] == [0, 1, 2]  # Every epoch once.


@pytest.mark.slow
def test_a_run_that_outlives_its_server_is_moved_into_place_at_the_next_start(models):
    server, child = _start_a_server_training(models, "orphan")
    server.send_signal(signal.SIGKILL)  # Only the server: the training goes on by itself.
    server.wait()
    assert leftovers(models) == [] and (models / ".staging-orphan").exists()  # Still training.
    _wait_until_gone(child, timeout=600)
    assert leftovers(models) == []  # Finished while no server watched: moved into place.
    assert available_models("mnist") == ["shipped", "orphan"]


MIRRORED_CHILD = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from ae_core import TrainConfig
from ae_core.train import train
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
card = train(TrainConfig(epochs=1, train_subset=5000, batch_size=32), sys.argv[1], verbose=0,
             strategy=strategy)
print(json.dumps({"replicas": card["replicas"], "val": card["best_val_mse"], "base": card["average_image_mse"]}))
"""


@pytest.mark.slow
def test_training_runs_under_a_mirrored_strategy(tmp_path):
    """Two logical CPUs stand in for two GPUs: the same code path MirroredStrategy takes."""
    result = subprocess.run([sys.executable, "-c", MIRRORED_CHILD, str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2 and report["val"] < report["base"]
    assert (tmp_path / "autoencoder_mnist_z2.weights.h5").exists()


@pytest.mark.slow
def test_a_one_epoch_run_reports_progress_from_its_first_batch_at_least_every_two_seconds(models):
    """The Train page polls ``job.progress()`` each second; the run rewrites its report often
    enough that the page never shows the same line for more than 2 s while it trains."""
    job = Trainer().start(TrainConfig(epochs=1, **SMALL), "talkative", owner="me")
    reports = []  # (report's own time, phase, step), each distinct report once
    while job.progress().status == "running":
        report = runs.read_progress(job.staging)
        if report and (not reports or report["updated"] != reports[-1][0]):
            reports.append((report["updated"], report.get("phase"), report.get("step")))
        time.sleep(0.05)
    assert job.progress().status == "done", job.progress().message
    phases = [phase for _, phase, _ in reports]
    first = phases.index("training")
    assert reports[first][2] == 1, "the first training report is not the first batch's"
    steps = [step for _, phase, step in reports if phase == "training"]
    assert steps == sorted(steps) and steps[-1] == runs.steps_per_epoch(job.config)
    # Validation is shorter than the time the epoch's last step stands (runs.PROGRESS_EVERY or
    # more), so a poller may never see it; when seen, it comes after the training reports.
    last_training = max(i for i, phase in enumerate(phases) if phase == "training")
    assert all(i > last_training for i, phase in enumerate(phases) if phase == "validating"), phases
    assert phases[-1] == "saving the model and encoding the test images for its map"
    times = [updated for updated, _, _ in reports[first:]]
    assert max(later - earlier for earlier, later in zip(times, times[1:])) <= 2.0, times
    message = job.progress().message
    assert message.startswith("Saved as talkative")


@pytest.mark.slow
def test_a_run_is_stopped_by_its_key_on_any_server_and_by_no_other(models):
    job = Trainer().start(TrainConfig(epochs=20, train_subset=3_500, batch_size=32), "stoppable", owner="alice")
    _wait(job, lambda progress: "step" in progress.message)
    assert stop_run("stoppable", "bob", models) is False and job.running
    assert [run.name for run in live_runs(models)] == ["stoppable"]  # As another server sees it.
    assert stop_run("stoppable", "alice", models) is True  # Through the folder, not the process.
    progress = job.join(timeout=120)
    assert progress.status == "cancelled" and os.listdir(models) == []


ORPHANING_SERVER = """
import sys, time
from ae_core import TrainConfig
from ae_core.jobs import Trainer
job = Trainer().start(TrainConfig(epochs=2, train_subset=5_000, batch_size=32), sys.argv[1], sys.argv[2])
print(job._process.pid, flush=True)
time.sleep(3600)
"""


@pytest.mark.slow
def test_a_run_whose_server_died_is_shown_by_another_server_and_becomes_its_model(models, tmp_path):
    """A replica is killed mid-training: another one shows the run's progress, lets its starter
    (and only them) stop it after a reload, and lists the model once it is done."""
    from harness.browser import streamlit_server
    from harness.protocol import Session

    key = "starters-key-0123456789"
    server = subprocess.Popen([sys.executable, "-c", ORPHANING_SERVER, "adopted", key], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, env={**os.environ, "AE_MODELS_DIR": str(models)})
    child = int(server.stdout.readline())
    deadline = time.monotonic() + 300
    while runs.read_progress(models / ".staging-adopted").get("phase") != "training":
        assert time.monotonic() < deadline, "the run never started training"
        time.sleep(0.2)
    server.kill()  # The replica dies; its training goes on, with no server watching it.
    server.wait()
    with streamlit_server(tmp_path / "replica.log", env={"AE_MODELS_DIR": str(models)}) as (url, _):
        with Session(url) as starter, Session(url) as stranger:
            mine = starter.open("train", f"run=adopted&key={key}")
            theirs = stranger.open("train")
            assert mine.exceptions() == [] and theirs.exceptions() == []
            assert "adopted: running" in [element.heading.body for element in mine.elements("heading")]
            assert mine.elements("progress") and mine.widget("button", "Cancel training")
            assert any("Another visitor's training, adopted, is running" in element.alert.body
                       for element in theirs.elements("alert"))
            assert [widget for widget in theirs.widgets() if "Cancel" in widget.label] == []
        _wait_until_gone(child, timeout=600)
        with Session(url) as later:
            view = later.open("map")
    options = [element.selectbox.options for element in view.elements("selectbox") if element.selectbox.label == "Model"]
    assert len(options) == 1 and "adopted" in options[0]
    assert sorted(os.listdir(models)) == ["adopted"]
