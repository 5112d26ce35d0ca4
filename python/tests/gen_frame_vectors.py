"""Writes ``test/vectors/frames.json``: frames encoded by ``engine_polars.protocol`` that the
TypeScript (sidecar-protocol.ts) and Python test suites both check byte for byte.

    PYTHONPATH=python .venv/bin/python python/tests/gen_frame_vectors.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine_polars.protocol import encode_frame

OUT = Path(__file__).resolve().parents[2] / "test" / "vectors" / "frames.json"

CASES: list[tuple[str, dict[str, Any], bytes]] = [
    ("ping request with an empty body", {"id": 1, "op": "ping"}, b""),
    (
        "query request with a nested plan",
        {
            "id": 2,
            "op": "query",
            "plan": {
                "kind": "aggregate",
                "filter": {"from": 1700000000000, "to": 1700000060000, "event_types": ["click"]},
                "group_by": ["event_type", "user_id"],
                "metrics": ["value"],
            },
        },
        b"",
    ),
    (
        "error response with non-ASCII text",
        {
            "id": 3,
            "ok": False,
            "code": "BAD_PLAN",
            "message": "unknown group key `café ✓ 😀`; expected one of `event_type`, `user_id`",
        },
        b"",
    ),
    (
        "string escapes that JSON.stringify writes the same way",
        {"id": 4, "op": "ping", "note": 'tab\tquote"back\\slash\nline\r\x00\x1f\u2028/'},
        b"",
    ),
    ("append request with a few body bytes", {"id": 5, "op": "append"}, bytes([0, 1, 2, 0x7F, 0x80, 0xFE, 0xFF])),
    (
        "ok response with counters",
        {"id": 4294967295, "ok": True, "rows": 0, "chunks": 0, "rss_bytes": 123456789012, "pid": 42, "flag": None},
        b"",
    ),
]


def vectors() -> list[dict[str, Any]]:
    return [
        {"name": name, "header": header, "body_hex": body.hex(), "frame_hex": encode_frame(header, body).hex()}
        for name, header, body in CASES
    ]


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(vectors(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(CASES)} frames to {OUT}")


if __name__ == "__main__":
    main()
