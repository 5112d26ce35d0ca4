"""Names of JSON value types, for messages that say what was received."""

from __future__ import annotations

import math
from typing import TypeGuard


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type: ``json_type([1]) == "array"``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def is_finite_number(value: object) -> bool:
    """True for a JSON number that is not NaN or infinite (``json.loads`` accepts ``NaN``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)


def is_integer(value: object) -> TypeGuard[int]:
    """True for a JSON number written as an integer (booleans are not integers here)."""
    return isinstance(value, int) and not isinstance(value, bool)
