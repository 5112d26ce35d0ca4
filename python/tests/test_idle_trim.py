from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engine_polars.idle_trim import IdleTrim

ROOT = Path(__file__).resolve().parents[2]


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_trims_once_after_each_idle_stretch_and_never_while_requests_come() -> None:
    clock = _Clock()
    trims: list[float] = []
    trim = IdleTrim(idle=10.0, trim=lambda: trims.append(clock.now), clock=clock)
    assert not trim.check()  # nothing answered yet: nothing to give back
    for _ in range(5):  # a request every 3 s: never idle for 10
        trim.touched()
        clock.now += 3.0
        assert not trim.check()
    clock.now += 7.0
    assert trim.check()
    assert trims == [clock.now]
    clock.now += 60.0
    assert not trim.check()  # idle since, but nothing new to give back
    trim.touched()
    clock.now += 9.9
    assert not trim.check()
    clock.now += 0.2
    assert trim.check()
    assert len(trims) == 2


_CHILD = r"""
import json, sys, numpy as np
from engine_polars.idle_trim import malloc_trim
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
base = rss()
arrays = [np.ones(5_000_000) for _ in range(8)]  # 320 MB, 40 MB each
del arrays
kept = rss() - base
malloc_trim()
print(json.dumps({"kept": kept, "after_trim": rss() - base}))
"""


def _child(env: dict[str, str]) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], env={**os.environ, **env, "PYTHONPATH": str(ROOT / "python")}, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout)


def test_with_raised_thresholds_freed_arrays_stay_until_trimmed() -> None:
    # the thresholds the engine gives a polars process (POLARS_MALLOC_ENV, src/shards/polars-process.ts)
    held = _child({"MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**30)})
    # freed 40 MB arrays stay in the heap for the next query to reuse...
    assert held["kept"] > 200_000_000
    # ...until the trim gives them back
    assert held["after_trim"] < 50_000_000
    # Node's own threshold (what the process would inherit): each array is a mapping, gone when freed
    mapped = _child({"MALLOC_MMAP_THRESHOLD_": "131072"})
    assert mapped["kept"] < 50_000_000
