"""Load TensorFlow, the default models and the test set in a background thread, once the
server's first page no longer needs the server's full attention; and, at once, the modules
every page imports.

The first map after a start needs none of them: its points, errors and decoder come from
``ae_core.store`` on disk. A click needs the 10-D model and the test images; by then they
are loaded, or the click waits for them (``ae_core``'s loaders hold a lock while loading, so
nothing is loaded twice). On a fresh cache this also computes what the map reads.

**When.** Importing TensorFlow holds Python's global lock for most of its long import, and
the same process serves the browser Streamlit's scripts: started with the server, the import
made the first map slower to appear (docs/performance.md has the figures). So it begins when
the first asset is asked for (``ui/assets.py``) and ``AFTER_ASSET`` seconds more, which a
page does only once its script has run and its elements are drawing, or ``LATEST`` seconds
after the start, whichever comes first. While it loads, Python switches threads every
``SWITCH_SECONDS`` instead of its usual 5 ms, so that the server's event loop, which gives
the lock up at every send, gets it back sooner.
"""

from __future__ import annotations

import logging
import sys
import threading

DATASET = "mnist"  # The sidebar's default: what most first views ask for.
LATEST = 8.0  # Seconds after the start at which loading begins anyway.
AFTER_ASSET = 1.5  # The first page's other assets are still on their way when one has gone.
SWITCH_SECONDS = 0.0005
READY = "Loaded in the background: TensorFlow, the default models and the test set."
_begun = threading.Event()
_lock = threading.Lock()


def start() -> None:
    """Import the pages' own modules now; begin loading TensorFlow within ``LATEST`` seconds,
    or sooner when ``asset_sent()`` is called."""
    # ui.state brings plotly and pandas: imported while the browser is still
    # fetching Streamlit's scripts, not by the first page's script.
    threading.Thread(target=_import_state, name="import-ui-state", daemon=True).start()
    _after(LATEST)


def asset_sent() -> None:
    """An asset has been sent: a page is drawing, and TensorFlow may load soon after."""
    if not _begun.is_set():
        _after(AFTER_ASSET)


def _after(seconds: float) -> None:
    timer = threading.Timer(seconds, begin)
    timer.daemon = True
    timer.start()


def _import_state() -> None:
    from . import state  # noqa: F401


def begin() -> None:
    """Begin loading now, unless it has begun already."""
    with _lock:
        if _begun.is_set():
            return
        _begun.set()
    threading.Thread(target=_load, name="warm-up", daemon=True).start()


def _load() -> None:
    usual = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_SECONDS)
    try:
        import ae_core
        from ae_core import store

        from .state import loading_for_the_server_lifetime

        with loading_for_the_server_lifetime():
            store.import_tensorflow()
            ae_core.load_autoencoder(2, DATASET)
            ae_core.load_autoencoder(10, DATASET)
            ae_core.load_mnist("test", DATASET)
        store.map_data(DATASET)
        print(READY, file=sys.stderr, flush=True)  # One line: memory measurements wait for it.
    except Exception as error:  # A page that needs what failed shows the reason itself.
        logging.getLogger(__name__).warning("Loading in the background stopped: %s", error)
    finally:
        sys.setswitchinterval(usual)
