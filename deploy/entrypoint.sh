#!/usr/bin/env bash
# One replica of the app: the container's ENTRYPOINT (deploy/Dockerfile), and the command
# deploy/serve.sh runs for each replica, so the tests run the image's own start-up.
#
#   deploy/entrypoint.sh [streamlit options]   serve on $ADDRESS:$PORT (0.0.0.0:8501)
#   deploy/entrypoint.sh prepare               build tensorflow-datasets' cache once, then exit
#
# Settings, from the environment (docs/deploy.md):
#   AE_DATA_DIR     a folder with mnist/ and fashion_mnist/, the four original .gz files each
#                   (mounted); unset, the files baked into the image at deploy/data/ are used
#                   if there are any, else tfds downloads them (online only).
#   TFDS_DATA_DIR   tfds's prepared cache; share it between replicas (built once, under a lock).
#   AE_MODELS_DIR   models trained from the browser; share it between replicas.
#   AE_TRAIN_BUDGET the most one training may ask, in images seen.
#   STREAMLIT_SERVER_COOKIE_SECRET  the same for every replica behind one balancer.
#   PORT, ADDRESS   where to listen; AE_PYTHON  the interpreter (else .venv's, else python3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() { echo "entrypoint.sh: $*" >&2; exit 1; }

if [[ -n ${AE_PYTHON:-} ]]; then
  py=$AE_PYTHON
elif [[ -n ${VIRTUAL_ENV:-} && -x $VIRTUAL_ENV/bin/python ]]; then
  py=$VIRTUAL_ENV/bin/python
elif [[ -x .venv/bin/python ]]; then
  py=$PWD/.venv/bin/python  # run.sh's virtual environment
else
  py=$(command -v python3 || command -v python) || die "no python3 on the PATH, and no .venv here (bash run.sh makes one)."
fi

if [[ -z ${AE_DATA_DIR:-} && -d deploy/data/mnist ]]; then
  export AE_DATA_DIR=$PWD/deploy/data  # baked into the image (docs/deploy.md)
fi
if [[ -n ${AE_DATA_DIR:-} ]]; then  # ae_core/datasets.py: the datasets and their files
  missing=$("$py" ae_core/datasets.py missing "$AE_DATA_DIR") ||
    die "AE_DATA_DIR=$AE_DATA_DIR has no $missing: mount a folder holding $("$py" ae_core/datasets.py layout)."
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

if [[ ${1:-} == prepare ]]; then
  # Both datasets, built (each under tfds's folder lock) only if they are not yet: after this
  # the replicas only read the cache. Seconds when it is ready, about a minute when not.
  exec "$py" - <<'EOF'
import sys
import tensorflow_datasets as tfds  # Without TensorFlow: a quick check first.

from ae_core.datasets import BY_NAME

missing = [name for name in BY_NAME if not tfds.builder(name).is_prepared()]
if missing:
    import ae_core

    for name in missing:
        print(f"entrypoint.sh: preparing {name} in tensorflow-datasets' cache (once) ...", file=sys.stderr)
        ae_core.load_mnist("test", name)
EOF
fi

exec "$py" -m streamlit run app.py --server.port "${PORT:-8501}" --server.address "${ADDRESS:-0.0.0.0}" \
  --server.headless true --browser.gatherUsageStats false --server.fileWatcherType none "$@"
