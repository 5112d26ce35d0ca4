"""Entry point: ``python -m engine_polars``.

One polars thread per process: parallelism comes from running one process per shard, so the
thread count is pinned here, before anything imports polars (its pool size is fixed on import).

polars allocates with jemalloc, which by default keeps freed pages for 10 s and then frees them
lazily, only when it next allocates, and with ``MADV_FREE`` (still counted in the process's RSS
until the kernel wants them): after a compaction or a roll an idle process looked ~40 % bigger
than the data it holds. A background thread (``_RJEM_MALLOC_CONF``, read by jemalloc when it
first allocates, i.e. on importing polars) returns pages unused for 10 s (``dirty_decay_ms``)
straight to the system (``muzzy_decay_ms:0``), so an idle process comes back within a few MB of
what it holds. 10 s, not less: a large query touches ~650 MB of fresh pages per process (a
by-user aggregate at 10 M events), and with pages returned after 1 s the next one paid for them
again in page faults (~310,000 per query across two shards; ~110,000 with 10 s, and ~0.2 s less
CPU per shard). An operator's own ``_RJEM_MALLOC_CONF`` wins.

The process dies with the engine thread that started it (``parent_death``), first thing.
"""

import os
import sys

from engine_polars.parent_death import die_with_parent

die_with_parent()
os.environ.setdefault("POLARS_MAX_THREADS", "1")
os.environ.setdefault("_RJEM_MALLOC_CONF", "background_thread:true,dirty_decay_ms:10000,muzzy_decay_ms:0")

from engine_polars.server import main  # noqa: E402  (must follow the environment setup)

if __name__ == "__main__":
    sys.exit(main())
