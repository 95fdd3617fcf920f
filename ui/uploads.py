"""Uploads: at most one file kept per session, and the limits the "Your image" page states
and ``prepare_digit`` applies: this server's policy, passed to ``ae_core.prepare_digit``.

Streamlit keeps every uploaded file in the server's memory (``MemoryUploadedFileManager``)
until the browser deletes it or the session ends, and its endpoint
``PUT /_stcore/upload_file/<session id>/<file id>`` stores a file under any new file id of a
live session. So one session holding its own XSRF cookie could pour in file after file, each
up to ``server.maxUploadSize``, and all of them stayed.

``install()`` turns the running server's manager into ``OneFilePerSession``: storing a file
first drops the session's earlier files. ``app.py`` calls it on every page view, so that a
session is bounded from its first run, whatever page it opens.
The app has a single uploader (the "Your image" page, one file at a time), so a session never
needs two files at once; a second uploader would need this rule revisited.

It also fixes glibc's threshold for giving freed blocks back to the system (see
``_return_large_blocks_to_the_system``), so that a dropped file stops counting at once.

The bound on the server memory uploads can take, above its idle level:

    F x (S + C)  +  DECODE_SLOTS x D  +  P x R

* F = 21 MB: the largest file the server stores (``server.maxUploadSize`` = 20, counted by
  the server in MiB; the browser already refuses anything over ``MAX_BYTES``);
* S: sessions holding a file (one each, at most), C: uploads arriving at that moment (the
  server reads each whole into memory before storing it);
* D = 90 MB: one preparation of the worst file ``ae_core.safe_images`` admits (84 MB at
  worst), at most ``DECODE_SLOTS`` at once;
* R = 17 MB: a page run's steps at 1024 x 1024 while it shows them, P: pages doing so at once.

docs/security.md has what floods of uploads measured against this bound, with and without
this module (``tests/test_uploads.py`` holds them to it).

The manager is changed in place (its class, not the object) because the upload route and
every session already hold that very object.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import math
import re
import threading

from streamlit import config, runtime
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.uploaded_file_manager import UploadedFileRec

import ae_core
from ae_core.safe_images import MAX_PIXELS, MAX_WEBP_PIXELS

_LOGGER = logging.getLogger(__name__)
_install_lock = threading.Lock()

# The uploader's limit, server.maxUploadSize (set in .streamlit/config.toml), in Streamlit's
# unit: its server refuses files over this many MiB, but the browser over this many megabytes
# of 10**6 bytes (1024**2 on Windows), so the limit users meet, stated and checked here, is
# the decimal one, and a file between the two is refused by prepare_digit with a sentence.
MAX_UPLOAD_MB = config.get_option("server.maxUploadSize")
MAX_BYTES = MAX_UPLOAD_MB * 10**6
DECODE_SLOTS = 2  # Preparations running at once in one server process: it has 2 cores.
DECODE_WAIT_SECONDS = 60  # How long a preparation waits for a slot before it is refused.
LIMIT_TEXT = f"up to {MAX_UPLOAD_MB} MB and {MAX_PIXELS / 10**6:.1f} megapixels"
LIMIT_HELP = (f"PNG, JPEG, GIF, BMP or WebP of at most {MAX_UPLOAD_MB} MB ({MAX_BYTES:,} bytes) and "
              f"{math.isqrt(MAX_PIXELS)}×{math.isqrt(MAX_PIXELS)} pixels (WebP: "
              f"{math.isqrt(MAX_WEBP_PIXELS)}×{math.isqrt(MAX_WEBP_PIXELS)}). Your browser refuses a "
              "larger file and marks it with a red **!**; the results below stay those of the file "
              "they name.")

_decode_slots = threading.BoundedSemaphore(DECODE_SLOTS)


def prepare_digit(data: bytes) -> ae_core.DigitSteps:
    """``ae_core.prepare_digit`` under this server's policy: a file over ``MAX_BYTES`` is refused
    at once, and at most ``DECODE_SLOTS`` preparations run at a time, whichever session asks."""
    return ae_core.prepare_digit(data, max_bytes=MAX_BYTES, slot=_decode_slot)


@contextlib.contextmanager
def _decode_slot():
    """One of the ``DECODE_SLOTS``, or a refusal after ``DECODE_WAIT_SECONDS`` of waiting."""
    if not _decode_slots.acquire(timeout=DECODE_WAIT_SECONDS):
        raise ValueError("The server is busy preparing other images; please try again in a minute.")
    try:
        yield
    finally:
        _decode_slots.release()


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 4 * 2**20


def _return_large_blocks_to_the_system() -> bool:
    """Make glibc give every freed block of 4 MiB or more straight back to the system.

    By default glibc raises its threshold for that to the size of the largest block freed so
    far (up to 32 MiB), and then keeps freed blocks below it in the arena of the thread that
    allocated them. Uploads are read in up to 40 worker threads and prepared in each
    session's own thread, so the server's memory stayed as high as the largest flood had
    made it: with this, the 20 MB files and 64 MB images are unmapped as soon as they are
    dropped. Fixed thresholds are what glibc's own documented ``MALLOC_MMAP_THRESHOLD_`` and
    ``MALLOC_TRIM_THRESHOLD_`` environment variables set; this sets them for the running
    server. False where the C library has no ``mallopt`` (macOS, musl): nothing changes."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD))


class OneFilePerSession(MemoryUploadedFileManager):
    """A ``MemoryUploadedFileManager`` that keeps only each session's newest file."""

    _adding = threading.Lock()  # One add at a time, so that two PUTs cannot both stay.

    def add_file(self, session_id: str, file: UploadedFileRec) -> None:
        with self._adding:
            for file_id in self.file_ids(session_id):
                if file_id != file.file_id:
                    self.remove_file(session_id, file_id)
            super().add_file(session_id, file)

    def file_ids(self, session_id: str) -> list[str]:
        """The ids of the files the session holds, oldest first."""
        with self._lock:
            return list(self.file_storage.get(session_id, ()))

    def keep_newest_only(self) -> None:
        """Drop every session's files but its newest (those stored before ``install``)."""
        with self._adding:
            with self._lock:
                sessions = {session: list(files) for session, files in self.file_storage.items()}
            for session_id, file_ids in sessions.items():
                for file_id in file_ids[:-1]:
                    self.remove_file(session_id, file_id)


def install() -> bool:
    """Make the running server keep at most one uploaded file per session.

    True once it does; False outside a server (AppTest, plain Python) or if Streamlit's
    manager is not the in-memory one this was written for (then a warning is logged).
    Safe to call on every run: after the first time it only checks."""
    if not runtime.exists():
        return False
    manager = runtime.get_instance().uploaded_file_mgr
    if isinstance(manager, OneFilePerSession):
        return True
    with _install_lock:
        if type(manager) is MemoryUploadedFileManager:
            manager.__class__ = OneFilePerSession
            manager.keep_newest_only()
            if not _return_large_blocks_to_the_system():
                _LOGGER.warning("Uploads: could not set glibc's mmap threshold; freed uploads may "
                                "stay counted in the server's memory.")
        elif not isinstance(manager, OneFilePerSession):
            _LOGGER.warning("Uploads are not limited to one file per session: Streamlit's file "
                            "manager is a %s.", type(manager).__name__)
            return False
    return True


def display_name(name: str, limit: int = 60) -> str:
    """A user's file name, safe inside Markdown: shortened, and every punctuation mark escaped.

    >>> display_name("my_photo [1].png")
    'my\\\\_photo \\\\[1\\\\]\\\\.png'
    """
    name = "".join(character if character.isprintable() else "?" for character in name.strip())
    if len(name) > limit:
        name = name[: limit - 1] + "…"
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", name) or "unnamed file"
