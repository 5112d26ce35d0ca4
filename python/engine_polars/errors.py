"""The error catalogue of the polars context.

Every error that crosses the process boundary carries a stable ``code`` (the TypeScript side's
``SidecarErrorCode``) and a short lower-case message that names the field and says what was
expected, e.g. "unknown group key `foo`; expected one of `event_type`, `user_id`".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar


class EngineError(Exception):
    """Base of every error answered as ``{ok: false, code, message}``."""

    code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadFrame(EngineError):
    """A frame, its header or its body cannot be used."""

    code = "BAD_FRAME"


class ProtocolError(BadFrame):
    """A frame could not be read off the stream.

    ``fatal`` only for a frame cut short by the end of input: nothing follows it, so the process
    stops. Every other one (a header that is not a JSON object, too deep, too long) was consumed
    whole and leaves the stream at the next frame.
    """

    def __init__(self, message: str, *, fatal: bool) -> None:
        super().__init__(message)
        self.fatal = fatal


class FrameTooLarge(ProtocolError):
    """A frame declared a header over ``maxFrameHeaderBytes`` (or a body that did not fit in
    memory); its bytes were read and discarded, so the stream is at the next frame."""

    code = "FRAME_TOO_LARGE"

    def __init__(self, message: str) -> None:
        super().__init__(message, fatal=False)


class BadPlan(EngineError):
    """A query plan is malformed or asks for something that does not exist."""

    code = "BAD_PLAN"


class ResultTooLarge(EngineError):
    """A plan's estimated result cells on this shard are over its ``max_cells``."""

    code = "RESULT_TOO_LARGE"


class UnknownOp(EngineError):
    """The header's ``op`` is not one this process answers."""

    code = "UNKNOWN_OP"


class InternalError(EngineError):
    """Anything unexpected; the message carries the original exception text."""

    code = "INTERNAL"


def names(values: Iterable[str]) -> str:
    """Backticked, comma-separated names: ``names(["a", "b"]) == "`a`, `b`"``."""
    return ", ".join(f"`{v}`" for v in values)


def unknown_name(what: str, got: str, allowed: Iterable[str]) -> str:
    """Message for a name outside a fixed set."""
    return f"unknown {what} `{got}`; expected one of {names(allowed)}"


def internal_error(exc: BaseException) -> InternalError:
    """Wraps an unexpected exception, keeping its type and text."""
    text = str(exc)
    return InternalError(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
