"""``config/limits.json`` is the one source of the limits both languages enforce."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engine_polars import limits

PYTHON_DIR = Path(__file__).resolve().parents[1]


def file_limits() -> dict[str, object]:
    raw = json.loads(limits.LIMITS_PATH.read_text(encoding="utf-8"))
    return {k: v for k, v in raw.items() if k != "//"}


def test_reads_the_repository_config_file() -> None:
    assert limits.LIMITS_PATH == PYTHON_DIR.parent / "config" / "limits.json"


def test_every_key_of_limits_json_is_read_by_limits_py() -> None:
    assert set(file_limits()) == limits.READ_KEYS


def test_constants_carry_the_files_values() -> None:
    raw = file_limits()
    assert limits.MAX_SUBPLANS == raw["maxSubplans"]
    assert limits.MAX_WINDOWS == raw["maxWindows"]
    assert limits.TOPN_MAX_N == raw["topnMaxN"]
    assert limits.ENRICHMENT_MAX_COLUMNS == raw["enrichmentMaxColumns"]
    if "ENGINE_MAX_FRAME_HEADER_BYTES" not in os.environ:
        assert limits.MAX_FRAME_HEADER_BYTES == raw["maxFrameHeaderBytes"]


def header_limit_with(value: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(PYTHON_DIR), "ENGINE_MAX_FRAME_HEADER_BYTES": value}
    code = "from engine_polars import limits; print(limits.MAX_FRAME_HEADER_BYTES)"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_the_test_only_environment_override_can_lower_the_header_limit() -> None:
    assert header_limit_with("4096").stdout.strip() == "4096"


def test_the_override_can_never_raise_the_header_limit() -> None:
    over = header_limit_with(str(int(str(file_limits()["maxFrameHeaderBytes"])) + 1))
    assert over.returncode != 0 and "`ENGINE_MAX_FRAME_HEADER_BYTES` must be an integer in 1.." in over.stderr
    assert header_limit_with("lots").returncode != 0
