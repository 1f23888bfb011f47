"""Gunicorn hooks for bench/intake.py (passed with -c, the same for every target).

Each worker touches a file named after its pid once its app is loaded, so the bench
starts measuring only when every worker is serving (loading the moderation model can
take seconds) and knows which pids to charge server CPU time to.
"""

from __future__ import annotations

import os
from pathlib import Path


def post_worker_init(worker) -> None:  # noqa: ANN001 - gunicorn's Worker
    ready_dir = os.environ.get("BENCH_READY_DIR")
    if ready_dir:
        Path(ready_dir, str(worker.pid)).touch()
