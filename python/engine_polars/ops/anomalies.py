"""The ``anomalies`` plan. (Stub: parser and handler to be written with the route.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from engine_polars.errors import BadPlan

__all__ = ["KIND", "parse", "run"]

KIND = "anomalies"


def parse(obj: Mapping[str, Any], path: str) -> Any:
    raise BadPlan(f"plan kind `anomalies` is not implemented yet (at `{path}`)")


def run(plan: Any, frame: pl.LazyFrame) -> pl.DataFrame:
    raise BadPlan("plan kind `anomalies` is not implemented yet")
