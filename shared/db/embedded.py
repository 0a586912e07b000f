"""The embedded PostgreSQL (pgserver) used when no DATABASE_URL is set.

The cluster lives in a project-local folder and outlives the process (`cleanup_mode=None`), so data
is kept between runs and two processes starting together share one postmaster; `stop()` ends it.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pgserver

log = logging.getLogger(__name__)


def start(data_dir: Path) -> str:
    """Start (or join) the embedded cluster in `data_dir` and return its connection URI."""
    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    log.info("embedded postgres ready", extra={"pg_dir": str(data_dir)})
    return server.get_uri()


def stop(data_dir: Path) -> bool:
    """Stop the embedded cluster in `data_dir`; False if none was running there."""
    data_dir = data_dir.expanduser().resolve()
    if not (data_dir / "postmaster.pid").exists():
        return False
    try:
        pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir)
    except subprocess.CalledProcessError as exc:
        # pg_ctl exits non-zero when the pid file is stale (server already gone): report, don't hide.
        log.warning("embedded postgres stop failed", extra={"pg_dir": str(data_dir), "error": str(exc)})
        return False
    return True
