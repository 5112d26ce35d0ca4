"""Result encoding (``_utils/ipc.py``): what the TypeScript readers get from polars' own writer."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest

from engine_polars._utils.ipc import to_ipc_stream

FRAME = pl.DataFrame(
    {"k": ["a", None, "ünïcode ✓"], "n": [1, 2, None], "x": [1.5, None, -2.0], "ok": [True, False, None]},
    schema={"k": pl.String, "n": pl.Int64, "x": pl.Float64, "ok": pl.Boolean},
)


@pytest.mark.parametrize("rows", [3, 0])
def test_writes_large_utf8_strings_and_at_least_one_record_batch(rows: int) -> None:
    reader = pa.ipc.open_stream(to_ipc_stream(FRAME.head(rows)))
    batches = list(reader)
    assert [(f.name, str(f.type)) for f in reader.schema] == [("k", "large_string"), ("n", "int64"), ("x", "double"), ("ok", "bool")]
    assert len(batches) >= 1 and sum(b.num_rows for b in batches) == rows
    assert pa.Table.from_batches(batches, reader.schema).to_pylist() == FRAME.head(rows).to_dicts()


def test_round_trips_through_polars() -> None:
    assert pl.read_ipc_stream(to_ipc_stream(FRAME)).equals(FRAME)
