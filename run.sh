#!/usr/bin/env bash
# Start the app:  bash run.sh [streamlit options, e.g. --server.port 8502]
#
# Works from a fresh clone with only python3 on the PATH (docs/setup.md). Unless a virtual
# environment is active, it makes .venv once and reuses it: Debian and Ubuntu have no
# `python` and refuse pip installs into their own Python (PEP 668).
# test.sh sources this file for the same set-up, so the functions stop short of starting.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

die() { echo "$*" >&2; exit 1; }

# TensorFlow 2.21 has wheels for CPython 3.10-3.13, and the pinned numpy 2.4 needs 3.11+.
check_python() {  # check_python PYTHON [fix]: refuse an interpreter the pins cannot install into
  local version fix=${2:-"install one of them as python3 and run again"}
  version=$("$1" -c 'import sys; print("is Python %d.%d" % sys.version_info[:2])' 2>/dev/null) || version="does not run"
  case $version in
    "is Python 3.11" | "is Python 3.12" | "is Python 3.13") ;;
    *) die "$1 $version, but this project needs CPython 3.11, 3.12 or 3.13 (the versions that TensorFlow 2.21 and the pinned numpy 2.4 both support): $fix." ;;
  esac
}

apt_install() {  # Debian/Ubuntu as root, as CI runs; dpkg needs the sbin folders on PATH.
  PATH=/usr/local/sbin:/usr/sbin:/sbin:$PATH DEBIAN_FRONTEND=noninteractive apt-get update -qq
  PATH=/usr/local/sbin:/usr/sbin:/sbin:$PATH DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

make_venv() {  # python3 -m venv .venv, installing Debian's python3-venv first if need be
  if python3 -m venv --clear .venv >/dev/null 2>&1; then return; fi
  rm -rf .venv  # half made: without pip
  if [[ $EUID == 0 ]] && command -v apt-get >/dev/null; then
    apt_install python3-venv && python3 -m venv .venv && return
  fi
  die "python3 cannot make a virtual environment: install its venv module (Debian/Ubuntu: sudo apt-get install python3-venv) and run again."
}

# setup_python REQUIREMENTS: sets $py to a supported Python with REQUIREMENTS installed.
setup_python() {
  if [[ -n ${VIRTUAL_ENV:-} ]]; then
    py=$VIRTUAL_ENV/bin/python
    check_python "$py" "activate a virtual environment made with one of them, or deactivate it to use .venv"
  else
    py=.venv/bin/python
    if ! [[ -x $py ]] || ! "$py" -c '' 2>/dev/null; then
      command -v python3 >/dev/null || die "There is no python3 on the PATH: install CPython 3.11, 3.12 or 3.13 and run again."
      check_python python3
      echo "Making .venv with $(command -v python3) (once) ..." >&2
      make_venv
    fi
    check_python "$py" "delete .venv and run again with one of them as python3"
  fi
  # Install only when the requirements changed since the last install, so later starts are fast.
  local stamp=${py%/bin/python}/.installed-$1.sha256 hash
  hash=$(cat "$1" requirements.txt | sha256sum)
  if [[ $(cat "$stamp" 2>/dev/null) != "$hash" ]]; then
    echo "Installing $1 into ${py%/bin/python} (first run, or it changed; minutes the first time) ..." >&2
    # The filter drops only pip's notes that a configured local index folder is absent.
    "$py" -m pip install -q --disable-pip-version-check -r "$1" 2>&1 |
      { grep -v "^WARNING: Location 'file:.*' is ignored" || true; } >&2
    echo "$hash" >"$stamp"
  fi
}

[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0  # sourced by test.sh: set-up only
setup_python requirements.txt
exec "$py" -m streamlit run app.py "$@"
