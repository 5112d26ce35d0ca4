"""Facts about this process for ``stats``."""

from __future__ import annotations

import os
import resource
import sys


def rss_bytes() -> int:
    """Resident set size now, from ``/proc/self/statm`` (pages × page size).

    Without ``/proc`` (macOS), falls back to the peak RSS ``getrusage`` reports.
    """
    try:
        with open("/proc/self/statm", "rb") as f:
            resident_pages = int(f.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
