"""The embedded PostgreSQL (pgserver) used when no DATABASE_URL is set.

The cluster lives in a project-local folder and outlives the process (`cleanup_mode=None`), so data
is kept between runs and two processes starting together share one postmaster; `stop()` ends it.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import pgserver

log = logging.getLogger(__name__)


def start(data_dir: Path) -> str:
    """Start (or join) the embedded cluster in `data_dir` and return its connection URI."""
    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    if not (data_dir / "postmaster.pid").exists():
        # pgserver hands back its handle of this data dir as it was, also after stop() (it asks psutil,
        # which counts an unreaped postmaster as running): start the postmaster again, under the
        # inter-process lock pgserver itself starts it under.
        with server._lock:
            server.ensure_postgres_running()
    log.info("embedded postgres ready", extra={"pg_dir": str(data_dir)})
    return server.get_uri()


def stop(data_dir: Path, timeout: float = 30) -> bool:
    """Stop the embedded cluster in `data_dir` (fast shutdown); False if none was running there."""
    pid_file = data_dir.expanduser().resolve() / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return False
    # SIGINT is PostgreSQL's "fast" shutdown. Signalling the postmaster works for root too, where
    # pg_ctl refuses to run (pgserver runs the server as an unprivileged user when we are root).
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        log.warning("stale postmaster.pid; no server was running", extra={"pg_dir": str(data_dir)})
        return False
    deadline = time.monotonic() + timeout
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_file.exists():
        raise TimeoutError(f"embedded postgres in {data_dir} did not stop within {timeout} s")
    return True
