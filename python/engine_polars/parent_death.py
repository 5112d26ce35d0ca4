"""A polars process dies with the engine thread that started it.

Without this, a polars process whose engine was killed (``kill -9``, the OOM killer) carried on
with the request it was serving, up to its deadline, and only then met its closed pipes: an
orphan holding its shard's segment lock while the restarted engine waited for it (up to 60 s),
and holding its memory meanwhile. Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``) kills
it as soon as the thread that spawned it is gone, whatever it is doing. That is safe: the store
is built to survive ``kill -9`` at any point (the write-ahead log, files renamed into place).

The parent is the thread that spawned the process (a shard's worker thread), which waits for its
polars process to exit before it ends on a graceful stop. ``SHARDLYTICS_PARENT_PID`` (set by the
engine) closes the race of a parent that died before the signal was armed.
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Arms SIGKILL on the parent's death (Linux); exits at once if the parent is already gone.
    Returns whether the signal is armed."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    expected = os.environ.get("SHARDLYTICS_PARENT_PID", "")
    if expected.isdigit() and os.getppid() != int(expected):
        os._exit(1)  # the engine died before the signal was armed: nobody will read our answers
    return True
