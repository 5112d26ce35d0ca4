"""Entry point: ``python -m engine_polars``.

One polars thread per process: parallelism comes from running one process per shard, so the
thread count is pinned here, before anything imports polars (its pool size is fixed on import).
"""

import os
import sys

os.environ.setdefault("POLARS_MAX_THREADS", "1")

from engine_polars.server import main  # noqa: E402  (must follow the environment setup)

if __name__ == "__main__":
    sys.exit(main())
