"""Checks for decoded JSON fields; each raises :class:`BadPlan` naming the field's path."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from engine_polars._utils.json_types import is_finite_number, is_integer, json_type
from engine_polars.errors import BadPlan, names


def require_object(raw: object, path: str) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise BadPlan(f"`{path}` must be an object; got {json_type(raw)}")
    return raw


def reject_unknown_keys(obj: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
    allowed = tuple(allowed)
    for key in obj:
        if key not in allowed:
            raise BadPlan(f"unknown field `{path}.{key}`; expected one of {names(allowed)}")


def require_key(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise BadPlan(f"missing field `{path}.{key}`")
    return obj[key]


def finite_number(raw: object, path: str) -> float | int:
    if not is_finite_number(raw):
        got = json_type(raw) if json_type(raw) != "number" else repr(raw)
        raise BadPlan(f"`{path}` must be a finite number of epoch ms; got {got}")
    assert isinstance(raw, (int, float))
    return raw


def string_list(raw: object, path: str) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise BadPlan(f"`{path}` must be an array of strings; got {json_type(raw)}")
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            raise BadPlan(f"`{path}[{i}]` must be a string; got {json_type(item)}")
    return tuple(raw)


def distinct_names(raw: object, path: str, what: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A list of names from ``allowed``, each at most once."""
    items = string_list(raw, path)
    seen: set[str] = set()
    for item in items:
        if item not in allowed:
            raise BadPlan(f"unknown {what} `{item}` in `{path}`; expected one of {names(allowed)}")
        if item in seen:
            raise BadPlan(f"duplicate {what} `{item}` in `{path}`")
        seen.add(item)
    return items


def optional_int(obj: Mapping[str, Any], key: str, path: str, low: int, high: int) -> int | None:
    """``obj[key]`` as an integer in ``low..high``; ``None`` when absent or null."""
    raw = obj.get(key)
    if raw is None:
        return None
    if not is_integer(raw) or not low <= raw <= high:
        got = repr(raw) if is_integer(raw) else json_type(raw)
        raise BadPlan(f"`{path}.{key}` must be an integer in {low}..{high}; got {got}")
    assert isinstance(raw, int)
    return raw


#: Largest ``max_cells`` a plan may carry (any larger bound is no bound at all).
MAX_CELLS_BOUND = 2**53


def max_cells(obj: Mapping[str, Any], path: str) -> int | None:
    """The optional ``max_cells`` of a grouping plan: a positive integer, or ``None`` (unbounded)."""
    return optional_int(obj, "max_cells", path, 1, MAX_CELLS_BOUND)
