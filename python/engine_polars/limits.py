"""Built-in limits both languages enforce, read once from ``config/limits.json``.

The TypeScript side reads the same file (``src/kinds/limits.ts``), so a bound cannot be written
twice and drift. Every key of the file is read here (``tests/test_limits.py`` checks that), also
the few only the TypeScript side enforces, so a new key must be placed on one side or the other.

``ENGINE_MAX_FRAME_HEADER_BYTES`` (tests only) lowers :data:`MAX_FRAME_HEADER_BYTES` for this
process, so a test can send frames over the limit without writing 16 MiB; it can never raise it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = [
    "ANOMALIES_MAX_LIMIT",
    "CUSTOM_MAX_PARAMS_BYTES",
    "CUSTOM_MAX_TOP_N",
    "ENRICHMENT_MAX_COLUMNS",
    "EXPORT_MAX_PAGE",
    "EXPORT_MIN_PAGE",
    "FUNNEL_MAX_STEPS",
    "FUNNEL_MIN_STEPS",
    "LIMITS_PATH",
    "MAX_FRAME_HEADER_BYTES",
    "MAX_PANES_PER_WINDOW",
    "MAX_PERCENTILES",
    "MAX_SUBPLANS",
    "MAX_WINDOWS",
    "MAX_WINDOW_MS",
    "READ_KEYS",
    "TOPN_MAX_N",
]

LIMITS_PATH = Path(__file__).resolve().parents[2] / "config" / "limits.json"
_HEADER_OVERRIDE_ENV = "ENGINE_MAX_FRAME_HEADER_BYTES"


def _load(path: Path) -> dict[str, Any]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return raw


_RAW = _load(LIMITS_PATH)
_read: set[str] = set()


def _limit(key: str) -> int:
    value = _RAW.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{LIMITS_PATH}: `{key}` must be a non-negative integer; got {value!r}")
    _read.add(key)
    return value


def _header_limit() -> int:
    limit = _limit("maxFrameHeaderBytes")
    override = os.environ.get(_HEADER_OVERRIDE_ENV)
    if override is None:
        return limit
    if not override.isdigit() or not 1 <= int(override) <= limit:
        raise ValueError(f"`{_HEADER_OVERRIDE_ENV}` must be an integer in 1..{limit}; got {override!r}")
    return int(override)


#: Longest JSON header a frame may declare; a longer frame is skipped and answered FRAME_TOO_LARGE.
MAX_FRAME_HEADER_BYTES = _header_limit()
#: Most plans one ``query_many`` may carry.
MAX_SUBPLANS = _limit("maxSubplans")
#: Longest pane (``window.pane_ms``) in ms: 366 days.
MAX_WINDOW_MS = _limit("maxWindowMs")
#: Most windows one shard computes for one plan (``window`` plan, aggregate's ``window`` key).
MAX_WINDOWS = _limit("maxWindows")
#: Most panes per hopping window (``window.panes_per_window`` = windowSize / slide).
MAX_PANES_PER_WINDOW = _limit("maxPanesPerWindow")
ANOMALIES_MAX_LIMIT = _limit("anomaliesMaxLimit")
TOPN_MAX_N = _limit("topnMaxN")
FUNNEL_MIN_STEPS = _limit("funnelMinSteps")
FUNNEL_MAX_STEPS = _limit("funnelMaxSteps")
EXPORT_MAX_PAGE = _limit("exportMaxPage")
#: Largest ``custom.params`` as compact JSON text.
CUSTOM_MAX_PARAMS_BYTES = _limit("customMaxParamsBytes")
CUSTOM_MAX_TOP_N = _limit("customMaxTopN")
ENRICHMENT_MAX_COLUMNS = _limit("enrichmentMaxColumns")
# Enforced on the TypeScript side only: the smallest export page a client may ask for (a shard
# plan may ask for less, e.g. the rest of a page) and the percentiles per request (a shard sends
# digests, not percentiles).
EXPORT_MIN_PAGE = _limit("exportMinPage")
MAX_PERCENTILES = _limit("maxPercentiles")

#: The keys of ``limits.json`` read above.
READ_KEYS: frozenset[str] = frozenset(_read)
