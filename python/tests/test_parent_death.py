"""The parent-death signal of a polars process (engine_polars.parent_death); the engine side,
a killed engine taking its stopped polars processes with it, is
test/integration/polars-parent-death.test.ts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PYTHON_DIR = Path(__file__).resolve().parents[1]
ARM = "from engine_polars.parent_death import die_with_parent; print(die_with_parent(), flush=True)"


def _run(parent_pid: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SHARDLYTICS_PARENT_PID"}
    env["PYTHONPATH"] = str(PYTHON_DIR)
    if parent_pid is not None:
        env["SHARDLYTICS_PARENT_PID"] = parent_pid
    return subprocess.run([sys.executable, "-c", ARM], env=env, capture_output=True, text=True, timeout=60)


def test_armed_under_the_parent_the_engine_named() -> None:
    done = _run(str(os.getpid()))
    assert (done.returncode, done.stdout.strip()) == (0, "True")


def test_armed_without_a_named_parent() -> None:
    done = _run(None)
    assert (done.returncode, done.stdout.strip()) == (0, "True")


def test_exits_at_once_when_its_parent_is_not_the_one_named() -> None:
    # the engine that started it died before the signal was armed: it was re-parented
    done = _run(str(os.getpid() + 1_000_000))
    assert done.returncode == 1
    assert done.stdout == ""
