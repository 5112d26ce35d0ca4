"""One-line logs on stderr, prefixed ``engine_polars[pid]``; stdout carries frames only."""

from __future__ import annotations

import os
import sys


def log(message: str) -> None:
    line = " ".join(message.split())  # one event, one line, whatever the message holds
    try:
        sys.stderr.write(f"engine_polars[{os.getpid()}] {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # nobody is listening; logging must never take the process down
