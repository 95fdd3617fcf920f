"""The README's two commands in a fresh clone, as a new user on stock Debian or Ubuntu runs
them: ``env -i`` with ``PATH=/usr/bin:/bin``, so only the system's ``python3``, no
``python``, no virtual environment and no pip config of a user.

The clone is of this repository's HEAD, with the working tree's set-up files (the scripts and
requirements) copied over it, so the test checks the scripts as they are on disk. Installing
into the new ``.venv`` is real (nothing from the outer environment's site-packages); only
pip's download cache is shared, through ``PIP_CACHE_DIR``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from ae_core.datasets import expected_files
from harness.browser import free_port

ROOT = Path(__file__).resolve().parent.parent
SET_UP_FILES = ["run.sh", "test.sh", "ae_core/datasets.py", "requirements.txt", "requirements-dev.txt",
                "tests/test_setup.py"]
NEED_DATA = ("set AE_DATA_DIR to a folder holding mnist/ and fashion_mnist/ with the four "
             "original .gz files each, or run them online.")
NEED_PYTHON = "this project needs CPython 3.11, 3.12 or 3.13"
INSTALL_TIMEOUT = 1200  # a cold install on a fresh machine downloads about 1 GB
VENV_BYTES = 4 * 2**30  # the installed .venv is about 2.7 GB, and pip unpacks beside it

pytestmark = pytest.mark.slow


def _clone(tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    for name in SET_UP_FILES:
        (clone / name).write_bytes((ROOT / name).read_bytes())
    assert not (clone / ".venv").exists()
    return clone


def _bare_env(tmp_path: Path, path: str = "/usr/bin:/bin", **extra: str) -> dict:
    """What ``env -i PATH=... HOME=...`` leaves, plus pip's download cache."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    cache = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")
    return {"PATH": path, "HOME": str(home), "PIP_CACHE_DIR": cache, **extra}


def _run(command: list[str], cwd: Path, env: dict, timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=timeout)
    return result, time.monotonic() - start


def _fake_data(tmp_path: Path) -> Path:
    """A folder with the expected file names, empty: enough for test.sh's check, not for loading."""
    data = tmp_path / "data"
    for name in expected_files():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).touch()
    return data


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to run.sh's process group, SIGKILL after 30 s; one that already ended is left be
    (a failed install ends it, and its log is the message that matters)."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    except ProcessLookupError:
        server.wait()
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_test_sh_without_the_data_fails_at_once_with_the_fix(tmp_path):
    clone = _clone(tmp_path)
    (tmp_path / "empty").mkdir()
    result, seconds = _run(["bash", "test.sh"], clone, _bare_env(tmp_path, AE_DATA_DIR=str(tmp_path / "empty")), 30)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("The tests need MNIST") and NEED_DATA in result.stderr
    assert result.stderr.count("\n") == 1  # one sentence on one line
    assert seconds < 5 and not (clone / ".venv").exists()


def test_both_scripts_refuse_an_unsupported_python(tmp_path):
    """python3 is 3.9 (a stand-in before /usr/bin): both refuse before making .venv. test.sh is
    started from another folder with a relative AE_DATA_DIR, which counts from the repo root."""
    clone = _clone(tmp_path)
    _fake_data(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python3"
    fake.write_text(
        "#!/bin/sh\n"
        "# Python 3.9 as far as a version question goes, and for the table of datasets (test.sh checks\n"
        "# AE_DATA_DIR with it first, on any python3); anything else is not expected.\n"
        '[ "$1" = -c ] && exec /usr/bin/python3 -c "import sys; sys.version_info = (3, 9, 18, \'final\', 0)\n$2"\n'
        'case $1 in */ae_core/datasets.py | ae_core/datasets.py) exec /usr/bin/python3 "$@" ;; esac\n'
        'echo "fake python 3.9 was asked: $*" >&2; exit 97\n'
    )
    fake.chmod(0o755)
    env = _bare_env(tmp_path, path=f"{bin_dir}:/usr/bin:/bin", AE_DATA_DIR="../data")
    elsewhere = tmp_path / "else" / "where"  # where ../data is not
    elsewhere.mkdir(parents=True)
    for command, cwd in ((["bash", "run.sh"], clone), (["bash", str(clone / "test.sh")], elsewhere)):
        result, seconds = _run(command, cwd, env, 30)
        assert result.returncode == 1, result.stderr
        assert "python3 is Python 3.9" in result.stderr and NEED_PYTHON in result.stderr, result.stderr
        assert "fake python" not in result.stderr and seconds < 5
        assert not (clone / ".venv").exists()


def test_fresh_clone_run_sh_makes_the_venv_and_test_sh_reuses_it(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    assert free > VENV_BYTES, (f"{tmp_path} has {free / 2**30:.1f} GB free and a fresh .venv needs "
                               f"{VENV_BYTES / 2**30:.0f} GB: free space there (old pytest-of-* folders) and rerun.")
    clone = _clone(tmp_path)
    try:
        _check_fresh_clone(clone, tmp_path)
    finally:
        shutil.rmtree(clone / ".venv", ignore_errors=True)  # 2.7 GB; pytest would keep it for three runs


def _check_fresh_clone(clone: Path, tmp_path: Path) -> None:
    data = os.environ.get("AE_DATA_DIR")
    data = str(Path(data).resolve()) if data else str(_fake_data(tmp_path))  # --co reads no data
    env = _bare_env(tmp_path)
    port = free_port()
    log_path = tmp_path / "run.log"
    start = time.monotonic()
    with open(log_path, "w") as log:
        server = subprocess.Popen(["bash", "run.sh", "--server.port", str(port), "--server.headless", "true"],
                                  cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        while not _healthy(port):
            assert server.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() - start < INSTALL_TIMEOUT, log_path.read_text()[-3000:]
            time.sleep(2)
        run_seconds = time.monotonic() - start
    finally:
        _stop(server)
    log = log_path.read_text()
    assert "Making .venv with /usr/bin/python3" in log and "Installing requirements.txt" in log, log
    venv = clone / ".venv"
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    assert (venv / ".installed-requirements.txt.sha256").is_file()
    made = (venv / "pyvenv.cfg").stat().st_ino, (venv / "pyvenv.cfg").stat().st_mtime_ns
    tensorflow = next((venv / "lib").glob("python3.*/site-packages/tensorflow/__init__.py"))
    installed = tensorflow.stat().st_mtime_ns

    # test.sh, collecting only this file: the same .venv, only the dev tools added.
    env = {**env, "AE_DATA_DIR": data}
    first, first_seconds = _run(["bash", "test.sh", "--co", "-q", "tests/test_setup.py"], clone, env, INSTALL_TIMEOUT)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    assert "tests/test_setup.py: 3" in first.stdout  # what pytest -qq --co prints
    assert "Making .venv" not in first.stderr and "Installing requirements-dev.txt" in first.stderr
    assert ((venv / "pyvenv.cfg").stat().st_ino, (venv / "pyvenv.cfg").stat().st_mtime_ns) == made
    assert tensorflow.stat().st_mtime_ns == installed  # not reinstalled

    # Again: nothing changed, so no pip at all.
    again, again_seconds = _run(["bash", "test.sh", "--co", "-q", "tests/test_setup.py"], clone, env, 120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Installing" not in again.stderr and again_seconds < 30
    print(f"\nrun.sh to healthy {run_seconds:.0f} s, test.sh first {first_seconds:.0f} s, again {again_seconds:.1f} s")
