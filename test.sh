#!/usr/bin/env bash
# Set up this machine for the tests, then run them (unit, AppTest, browser):
#   AE_DATA_DIR=/folder/with/mnist bash test.sh [pytest args]     (CI: AE_DATA_DIR=../shared)
# Online, AE_DATA_DIR may be left unset. Quick lane: bash test.sh -m "not slow and not browser"
set -euo pipefail
cd "$(dirname "$0")"

# The tests read MNIST and Fashion-MNIST: say what is missing now, not after minutes of set-up.
no_data() { echo "The tests need MNIST ($1): set AE_DATA_DIR to a folder holding mnist/ and fashion_mnist/ with the four original .gz files each, or run them online." >&2; exit 1; }
if [[ -n ${AE_DATA_DIR:-} ]]; then
  [[ $AE_DATA_DIR == /* ]] || AE_DATA_DIR=$PWD/$AE_DATA_DIR  # relative to the repository's root
  export AE_DATA_DIR
  for file in {mnist,fashion_mnist}/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz; do
    [[ -f $AE_DATA_DIR/$file ]] || no_data "AE_DATA_DIR=$AE_DATA_DIR has no $file"
  done
elif ! timeout 3 bash -c ': <>/dev/tcp/storage.googleapis.com/443' 2>/dev/null; then
  no_data "AE_DATA_DIR is not set and storage.googleapis.com, where tensorflow-datasets downloads it, does not answer"
fi

source ./run.sh  # its set-up only: .venv (or the active virtual environment) as $py
setup_python requirements-dev.txt

if ! command -v chromium >/dev/null 2>&1; then
  # The browser tests drive Debian's chromium through Playwright (no browser download).
  apt_install chromium
fi
exec "$py" -m pytest -q "$@"
