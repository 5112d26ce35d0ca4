"""Private helpers of :mod:`engine_polars`; nothing here is part of the wire contract."""
