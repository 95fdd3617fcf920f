#!/usr/bin/env bash
# Install what the app needs, then start it:  bash run.sh   (same as: streamlit run app.py)
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install --quiet --disable-pip-version-check -r requirements.txt
exec streamlit run app.py "$@"
