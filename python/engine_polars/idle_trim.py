"""Gives glibc's freed heap back to the system once the process has been idle a while.

numpy allocates with glibc's malloc. The engine starts each polars process with glibc's mmap and
trim thresholds raised to 1 GiB (``src/shards/polars-process.ts``; Node's own 128 KiB threshold,
which ``npm start`` sets, would otherwise be inherited): the large arrays of a query (a grouping
counted into bins: keys and values of 5 M rows, bins of 1.4 M keys) then come from the heap and
are reused by the next query, instead of being fresh mappings faulted in page by page each time
(a by-user aggregate at 10 M events: ~114,000 → ~66,000 page faults per request over both
shards, slower shard's op CPU ~610–730 → ~550–570 ms). What a query freed stays with the process
until :class:`IdleTrim` sees no request for :data:`IDLE_SECONDS` and calls ``malloc_trim(0)``, as
jemalloc returns polars' own pages after 10 s (``__main__``): at rest the process is as small as
before.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable

__all__ = ["IDLE_SECONDS", "IdleTrim", "malloc_trim"]

#: Seconds without a request before the freed heap is given back (jemalloc's dirty_decay_ms).
IDLE_SECONDS = 10.0


def malloc_trim() -> bool:
    """glibc's ``malloc_trim(0)``: free heap pages back to the system (looked up among the
    process's own symbols, no library search). False where there is no glibc (nothing to do)."""
    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):
        return False


class IdleTrim:
    """Calls ``trim`` once after each stretch of :meth:`touched` calls followed by ``idle``
    seconds without one, from a daemon thread that checks every ``every`` seconds."""

    def __init__(self, idle: float = IDLE_SECONDS, every: float = 1.0, trim: Callable[[], object] = malloc_trim, clock: Callable[[], float] = time.monotonic) -> None:
        self._idle = idle
        self._every = every
        self._trim = trim
        self._clock = clock
        self._last = clock()
        self._pending = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def touched(self) -> None:
        """A request was answered: trim once the process has been idle ``idle`` seconds."""
        with self._lock:
            self._last = self._clock()
            self._pending = True

    def check(self) -> bool:
        """Trims if a request came since the last trim and none for ``idle`` seconds; whether it did."""
        with self._lock:
            if not self._pending or self._clock() - self._last < self._idle:
                return False
            self._pending = False
        self._trim()
        return True

    def start(self) -> None:
        """The daemon thread (it dies with the process)."""
        if self._thread is not None:
            return

        def run() -> None:
            while True:
                time.sleep(self._every)
                self.check()

        self._thread = threading.Thread(target=run, name="idle-trim", daemon=True)
        self._thread.start()
