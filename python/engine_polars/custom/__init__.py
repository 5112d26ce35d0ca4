"""Custom analytics functions: the operator's plugin folder.

One module per function, named like the function (``[a-z][a-z0-9_]{0,63}``; modules starting
with ``_`` are private helpers and never exposed). Each module defines::

    def run(frame: pl.LazyFrame, params: dict) -> pl.DataFrame   # or a LazyFrame
    MERGE = {"kind": "concat"}
          | {"kind": "sum", "keys": ["plan"]}
          | {"kind": "top-n", "by": "revenue", "n": 10, "order": "desc", "keys": ["page"]}

``run`` gets the shard's events (``timestamp`` Int64 epoch ms, ``event_type``, ``user_id``,
``value`` Float64, ``metadata`` JSON text), already filtered by the request's ``filter``, and the
request's ``params`` object. The store keeps metadata as typed columns (``__meta*``, read by
``with_dimensions`` for ``metadata.<key>``); the ``metadata`` text is rebuilt only if the plugin
reads it, so prefer ``with_dimensions`` over parsing it. It returns this shard's partial; ``POST /query/custom/<name>`` merges
the partials of every shard by ``MERGE``. Raise :class:`BadParams` for bad ``params`` (→ HTTP 400);
any other exception is answered as a 500 ``CUSTOM_FAILED`` with its message. Modules are loaded
once, when the shard's polars process first needs them; adding or changing one needs a restart.
The guide is ``docs/api/custom.md``.
"""

from __future__ import annotations

__all__ = ["BadParams"]


class BadParams(Exception):
    """Raised by a plugin's ``run`` when ``params`` are wrong; the message reaches the client
    (HTTP 400, code ``CUSTOM_BAD_PARAMS``). Name the parameter, e.g. "`min_value` must be a number"."""
