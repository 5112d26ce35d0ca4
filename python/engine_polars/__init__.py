"""A shard's polars context: holds the shard's events and answers query plans with partials.

Run as ``python -m engine_polars``; the wire format is in :mod:`engine_polars.protocol`.

This module must not import polars: ``__main__`` pins ``POLARS_MAX_THREADS`` before polars
starts its thread pool, and a package ``__init__`` always runs before ``__main__``.
"""

__all__: list[str] = []
