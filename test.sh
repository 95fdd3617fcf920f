#!/usr/bin/env bash
# Set up this machine for the tests, then run them (unit, AppTest, browser):
#   AE_DATA_DIR=/folder/with/mnist bash test.sh [pytest args]     (CI: AE_DATA_DIR=../shared)
# Online, AE_DATA_DIR may be left unset. Quick lane: bash test.sh -m "not slow and not browser"
set -euo pipefail
cd "$(dirname "$0")"

# The tests read MNIST and Fashion-MNIST: say what is missing now, not after minutes of set-up.
# ae_core/datasets.py, the table of datasets and their files, runs with any python3, before .venv.
no_data() { echo "The tests need MNIST ($1): set AE_DATA_DIR to a folder holding $(python3 ae_core/datasets.py layout), or run them online." >&2; exit 1; }
if [[ -n ${AE_DATA_DIR:-} ]]; then
  [[ $AE_DATA_DIR == /* ]] || AE_DATA_DIR=$PWD/$AE_DATA_DIR  # relative to the repository's root
  export AE_DATA_DIR
  missing=$(python3 ae_core/datasets.py missing "$AE_DATA_DIR") || no_data "AE_DATA_DIR=$AE_DATA_DIR has no $missing"
elif ! timeout 3 bash -c ': <>/dev/tcp/storage.googleapis.com/443' 2>/dev/null; then
  no_data "AE_DATA_DIR is not set and storage.googleapis.com, where tensorflow-datasets downloads it, does not answer"
fi

source ./run.sh  # its set-up only: .venv (or the active virtual environment) as $py
setup_python requirements-dev.txt

if ! command -v chromium >/dev/null 2>&1; then
  # The browser tests drive Debian's chromium through Playwright (no browser download).
  apt_install chromium
fi
# One pytest worker per core, up to 4 (each holds TensorFlow, and some a server and Chromium),
# each taking whole test files: most tests wait on a server, a browser or a child process as
# much as they compute, so 2 workers on 2 cores take the suite from about 14 minutes to about
# 9 (docs/setup.md). `bash test.sh -n 0 ...` runs in this one process instead.
workers=$(nproc 2>/dev/null || echo 2)
((workers <= 4)) || workers=4
exec "$py" -m pytest -q -n "$workers" --dist loadfile "$@"
