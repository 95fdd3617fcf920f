import os
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT


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


def test_fashion_mnist_loads_offline_too():
    import ae_core

    images, labels = ae_core.load_mnist("test", dataset="fashion_mnist")
    assert images.shape == (10000, 28, 28, 1) and sorted(np.unique(labels)) == list(range(10))
