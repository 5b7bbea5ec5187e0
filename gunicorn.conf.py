"""gunicorn settings for the workbench; gunicorn reads ./gunicorn.conf.py by itself, so
`gunicorn reasoner_site.wsgi` from the repository root runs with them (flags still override).

Threads, not only processes: a request spends much of its time waiting on PostgreSQL, and the
gthread worker keeps connections open between requests (keep-alive), where the sync worker
makes every API client reconnect for every call. A few processes use the cores; threads fill
the waits. Each thread keeps its own database connection (CONN_MAX_AGE), so PostgreSQL sees
up to workers x threads connections.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from reasoner_site.env import env_int

_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

worker_class = "gthread"
# One process per core (the GIL lets one thread of a process run Python at a time), at least
# two so that one busy worker never stalls everyone; WEB_CONCURRENCY is gunicorn's own name.
# On 2 cores, 2 x 8 served bench/review_load.py's 32 reviewers best (3 x 4: 12% fewer actions/s).
workers = env_int("WEB_CONCURRENCY", max(2, _cores))
# Per worker. Each thread holds a database connection: keep workers x threads below
# PostgreSQL's max_connections.
threads = env_int("WORKBENCH_WEB_THREADS", 8)
keepalive = 5  # seconds an idle client connection stays open
timeout = 30  # a worker silent this long is restarted
if workers < 1 or threads < 1:
    raise ImproperlyConfigured("WEB_CONCURRENCY and WORKBENCH_WEB_THREADS must be at least 1")


def post_worker_init(worker: Any) -> None:
    """Once Django is loaded, move everything it allocated out of the garbage collector's
    reach: those objects live as long as the worker, and every full collection would
    otherwise walk all of them again (about a tenth of a request's CPU time, measured)."""
    gc.collect()
    gc.freeze()
