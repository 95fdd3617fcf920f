import os
import subprocess
import sys
import time

import numpy as np
import pytest

from ae_core.datasets import BY_NAME
from conftest import ROOT
from idx import labelled_image_counts, read_idx_split, source_folder


def test_load_mnist_real_test_split(test_set):
    images, labels = test_set
    assert images.shape == (10000, 28, 28, 1) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    assert labels.shape == (10000,) and np.issubdtype(labels.dtype, np.integer)
    assert sorted(np.unique(labels)) == list(range(10))
    # MNIST's published test-set class counts (tfds shuffles the order, not the content).
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_second_load_is_cached_and_read_only(test_set):
    import ae_core
    from ae_core import data

    before = data._load.cache_info().hits
    images, labels = ae_core.load_mnist("test")
    assert images is test_set[0] and labels is test_set[1]
    assert data._load.cache_info().hits == before + 1
    with pytest.raises(ValueError):
        images[0, 0, 0, 0] = 1.0


def test_bad_split_and_dataset_are_refused():
    import ae_core

    with pytest.raises(ValueError, match="split"):
        ae_core.load_mnist("validation")
    with pytest.raises(ValueError, match="dataset"):
        ae_core.load_mnist("test", dataset="cifar10")


def _load_in_fresh_process(env_overrides: dict) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_overrides}
    code = "import ae_core; ae_core.load_mnist('test')"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_empty_data_dir_fails_at_once_with_the_fix(tmp_path):
    """AE_DATA_DIR names a folder without the files, and nothing is prepared yet."""
    (tmp_path / "data").mkdir()
    started = time.perf_counter()
    result = _load_in_fresh_process({"AE_DATA_DIR": str(tmp_path / "data"),
                                     "TFDS_DATA_DIR": str(tmp_path / "tfds")})
    elapsed = time.perf_counter() - started
    assert result.returncode != 0
    assert "DataUnavailableError" in result.stderr
    assert "AE_DATA_DIR" in result.stderr and "t10k-images-idx3-ubyte.gz" in result.stderr
    # No network retries: the whole process, TensorFlow import included, ends quickly.
    assert elapsed < 60


def test_offline_without_data_dir_fails_with_the_fix(tmp_path, monkeypatch):
    from ae_core import data

    monkeypatch.delenv("AE_DATA_DIR", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(data, "_online", lambda timeout_seconds=0.5: False)  # The network, not the code under test.
    with pytest.raises(data.DataUnavailableError, match="AE_DATA_DIR"):
        # Past the in-process cache, which other tests may have filled with this split.
        data._load.__wrapped__("test", "fashion_mnist")


# --- Each dataset is what it says, checked against the original files -----------------------

DATASETS = tuple(BY_NAME)


# The 60,000-image splits take about 10 s each, so the quick lane checks the test splits.
@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("split", ["test", pytest.param("train", marks=pytest.mark.slow)])
def test_loaded_split_equals_the_original_files(dataset, split):
    """The same images, each with the same label, as a numpy read of the .gz files."""
    import ae_core

    images, labels = ae_core.load_mnist(split, dataset)
    original_images, original_labels = read_idx_split(source_folder(dataset), split)
    assert images.shape == (len(original_images), 28, 28, 1)
    assert labelled_image_counts(images, labels) == labelled_image_counts(original_images, original_labels)


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("split", ["test", "train"])
def test_known_fingerprints_are_those_of_the_original_files(dataset, split):
    from ae_core.data import FINGERPRINTS, split_fingerprint

    assert split_fingerprint(*read_idx_split(source_folder(dataset), split)) == FINGERPRINTS[(dataset, split)]


def test_mnist_and_fashion_mnist_are_different_datasets():
    import ae_core

    mnist = labelled_image_counts(*ae_core.load_mnist("test", "mnist"))
    fashion = labelled_image_counts(*ae_core.load_mnist("test", "fashion_mnist"))
    shared_images = {image for image, _ in mnist} & {image for image, _ in fashion}
    assert not shared_images
    # And each is the dataset its name says, by a property no loader can fake: the files'.
    assert mnist == labelled_image_counts(*read_idx_split(source_folder("mnist"), "test"))
    assert fashion == labelled_image_counts(*read_idx_split(source_folder("fashion_mnist"), "test"))


LOAD_CHILD = """
import sys, numpy as np, ae_core
for dataset in sys.argv[2:]:
    images, labels = ae_core.load_mnist("test", dataset)
    np.savez(f"{sys.argv[1]}/{dataset}.npz", images=images, labels=labels)
"""


def _load_in_a_child(out_dir, datasets, **env):
    result = subprocess.run([sys.executable, "-c", LOAD_CHILD, str(out_dir), *datasets], cwd=ROOT,
                            env={**os.environ, **env}, capture_output=True, text=True, timeout=600)
    return result


def _assert_child_loaded_the_originals(out_dir, dataset):
    with np.load(out_dir / f"{dataset}.npz") as loaded:
        counts = labelled_image_counts(loaded["images"], loaded["labels"])
    assert counts == labelled_image_counts(*read_idx_split(source_folder(dataset), "test")), dataset


@pytest.mark.slow
def test_a_fresh_cache_builds_each_dataset_from_its_own_files_in_either_order(tmp_path):
    """Each order of first load in a fresh folder of its own; the two run at once."""
    orders = {"mnist-first": DATASETS, "fashion-first": DATASETS[::-1]}
    children = {}
    for name, order in orders.items():
        (tmp_path / name).mkdir()
        children[name] = subprocess.Popen([sys.executable, "-c", LOAD_CHILD, str(tmp_path / name), *order],
                                          cwd=ROOT, env={**os.environ, "TFDS_DATA_DIR": str(tmp_path / name / "tfds")},
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for name, child in children.items():
        _, errors = child.communicate(timeout=600)
        assert child.returncode == 0, (name, errors[-3000:])
        for dataset in orders[name]:
            _assert_child_loaded_the_originals(tmp_path / name, dataset)


# How versions before the fix built their cache: one shared downloads folder for both datasets.
OLD_LOADER_CHILD = """
import os, sys, numpy as np, tensorflow_datasets as tfds
for dataset in sys.argv[2:]:
    config = tfds.download.DownloadConfig(manual_dir=os.path.join(os.environ["AE_DATA_DIR"], dataset))
    images, labels = tfds.as_numpy(tfds.load(dataset, split="test", batch_size=-1, as_supervised=True,
                                             download_and_prepare_kwargs={"download_config": config}))
    np.savez(f"{sys.argv[1]}/old-{dataset}.npz", images=images, labels=labels)
"""


@pytest.mark.slow
def test_a_cache_built_from_the_wrong_files_is_never_used(tmp_path, monkeypatch):
    """The real case: a cache the old loader built, whose 'fashion_mnist' holds MNIST."""
    from ae_core import data

    tfds_dir = tmp_path / "tfds"
    built = subprocess.run([sys.executable, "-c", OLD_LOADER_CHILD, str(tmp_path), *DATASETS], cwd=ROOT,
                           env={**os.environ, "TFDS_DATA_DIR": str(tfds_dir)},
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    with np.load(tmp_path / "old-fashion_mnist.npz") as old:
        contaminated = labelled_image_counts(old["images"], old["labels"])
    assert contaminated == labelled_image_counts(*read_idx_split(source_folder("mnist"), "test")), \
        "the old loader no longer reproduces the contamination, so this test proves nothing"

    # No way to rebuild (offline, no AE_DATA_DIR): refused with the fix, in one sentence.
    monkeypatch.delenv("AE_DATA_DIR")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))
    monkeypatch.setattr(data, "_online", lambda timeout_seconds=0.5: False)  # The network, not the code under test.
    with pytest.raises(data.DataUnavailableError, match="holds other images than the original files") as refusal:
        data._load.__wrapped__("test", "fashion_mnist")  # Past the in-process cache.
    assert "AE_DATA_DIR" in str(refusal.value)
    monkeypatch.undo()

    # With the original files at hand, it is rebuilt from them, and MNIST is still MNIST.
    result = _load_in_a_child(tmp_path, DATASETS[::-1], TFDS_DATA_DIR=str(tfds_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    for dataset in DATASETS:
        _assert_child_loaded_the_originals(tmp_path, dataset)


# --- The table of datasets as a script, as test.sh and deploy/entrypoint.sh run it ----------

def _run_datasets_script(*args: str, cwd) -> subprocess.CompletedProcess:
    """Isolated (-I: no PYTHONPATH, not even the script's own folder on the path) and from
    another folder, so the script can import nothing of the project, as before .venv exists."""
    return subprocess.run([sys.executable, "-I", str(ROOT / "ae_core" / "datasets.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_the_datasets_script_names_the_first_missing_file_and_accepts_a_complete_folder(tmp_path):
    from ae_core.datasets import expected_files

    files = expected_files()
    for name in files[:-1]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    missing = _run_datasets_script("missing", str(tmp_path), cwd=tmp_path)
    assert (missing.returncode, missing.stdout, missing.stderr) == (1, files[-1] + "\n", "")
    (tmp_path / files[-1]).touch()
    complete = _run_datasets_script("missing", str(tmp_path), cwd=tmp_path)
    assert (complete.returncode, complete.stdout, complete.stderr) == (0, "", "")


IMPORTS_DURING_TFDS = """
import sys, threading
sys.path.insert(0, sys.argv[1])
sys.setswitchinterval(1e-6)  # Threads take turns often, as during the server's background loading.
seen, done = set(), threading.Event()

def import_meanwhile():  # What Streamlit's request handler does: imports inside a function.
    while not done.is_set():
        import email.utils as utils
        seen.add(type(utils).__name__)

def import_once():
    import email.utils as utils
    seen.add(type(utils).__name__)

if sys.argv[2] == "ours":  # A thread importing all through the real import of tfds.
    thread = threading.Thread(target=import_meanwhile)
    thread.start()
    from ae_core.data import import_tfds
    import_tfds()
    done.set()
    thread.join()
else:
    import tensorflow_datasets
# And for certain, not by chance: another thread imports while this one is inside the
# lazy-imports block that tfds's modules open.
from etils import epy
with epy.lazy_imports():
    thread = threading.Thread(target=import_once)
    thread.start()
    thread.join()
print(" ".join(sorted(seen)))
"""


@pytest.mark.slow
def test_importing_tfds_leaves_the_other_threads_imports_alone():
    """tfds imports inside etils' lazy_imports, which swaps the import of every thread: the
    bare import hands another thread a placeholder; ae_core's import_tfds does not."""
    def kinds(way: str) -> set[str]:
        result = subprocess.run([sys.executable, "-c", IMPORTS_DURING_TFDS, str(ROOT), way], capture_output=True,
                                text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert result.returncode == 0, result.stderr[-2000:]
        return set(result.stdout.split())

    assert kinds("bare") == {"LazyModule"}  # The hazard, as tfds and etils are today.
    assert kinds("ours") == {"module"}
