"""One learn run per specialist at a time: ``$AETH_HOME/locks/learn-<specialist>.lock``.

The lock is ``fcntl.flock`` on that file, so the operating system releases it when the holder's
process ends in any way (SIGKILL included): a crashed run never leaves it stuck, and no stale-pid
guessing is needed. The holder writes its pid and start time into the file, which is what a
refused run (and ``aeth learn status``) reports; the file itself stays, empty of meaning once
nobody holds it. The lock serialises everything a learn run does, from building the dataset (two
builds must not consume the same feedback rows) to the promotion.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aeth.errors import AethError

__all__ = ["LearnLocked", "holder", "learn_lock", "lock_path"]


class LearnLocked(AethError):
    """Another process holds the learn lock of this specialist."""


def lock_path(home: Path | str, specialist: str) -> Path:
    """``<home>/locks/learn-<specialist>.lock``."""
    return Path(home) / "locks" / f"learn-{specialist}.lock"


@contextmanager
def learn_lock(home: Path | str, specialist: str, *, wait: bool = False) -> Any:
    """Hold ``specialist``'s learn lock for the ``with`` block; refuse at once with
    :class:`LearnLocked` (naming the holder) when another process holds it, or with ``wait``, block
    until it is free."""
    import fcntl

    path = lock_path(home, specialist)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            info = holder(home, specialist) or {}
            started = info.get("started", "at an unknown time")
            raise LearnLocked(f"a learn of {specialist} is running (pid {info.get('pid', '?')}, started {started}); "
                              "wait for it or stop it (or add --wait to start when it ends)") from None
        info = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield info
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def holder(home: Path | str, specialist: str) -> dict | None:
    """``{"pid", "started"}`` of the process holding ``specialist``'s learn lock, or None when nobody does."""
    import fcntl

    path = lock_path(home, specialist)
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # held: what the holder wrote says who
            try:
                return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
            except ValueError:  # the holder is between truncating and writing
                return {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
