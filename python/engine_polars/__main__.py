"""Entry point: ``python -m engine_polars``.

One polars thread per process: parallelism comes from running one process per shard, so the
thread count is pinned here, before anything imports polars (its pool size is fixed on import).

polars allocates with jemalloc, which by default keeps freed pages for 10 s and then frees them
lazily (``MADV_FREE``: still counted in the process's RSS until the kernel wants them), so after
a compaction or a roll the process looked ~40 % bigger than the data it holds. A background
thread returning pages unused for a second (``_RJEM_MALLOC_CONF``, read by jemalloc when it
first allocates, i.e. on importing polars) keeps RSS within a few MB of what is held, without a
syscall on every free. An operator's own ``_RJEM_MALLOC_CONF`` wins.
"""

import os
import sys

os.environ.setdefault("POLARS_MAX_THREADS", "1")
os.environ.setdefault("_RJEM_MALLOC_CONF", "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0")

from engine_polars.server import main  # noqa: E402  (must follow the environment setup)

if __name__ == "__main__":
    sys.exit(main())
