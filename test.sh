#!/usr/bin/env bash
# Set up this machine for the tests, then run them all (unit, AppTest, browser).
#   AE_DATA_DIR=/folder/with/mnist bash test.sh      (CI: AE_DATA_DIR=../shared)
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
if ! command -v chromium >/dev/null 2>&1; then
  # The browser tests drive Debian's chromium through Playwright (no browser download).
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
exec python -m pytest -q "$@"
