"""An exclusive lock on a folder, shared by every process on the machine.

A training holds the lock on its output folder for as long as it runs, and a dataset build
holds the lock on tfds's data dir, so that several servers sharing these folders never
write one at the same time, and a folder whose lock is free is known to have no writer:

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as folder, folder_lock(folder) as held:
...     with folder_lock(folder, wait=False) as also_held:
...         held, also_held
(True, False)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def folder_lock(folder: Path | str, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``folder`` for the block; yields whether it was taken.

    With ``wait=False`` it does not wait for another holder: it yields False at once. The
    lock belongs to the open folder, so it follows a rename and ends with the process.
    """
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
