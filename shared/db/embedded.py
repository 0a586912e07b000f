"""The embedded PostgreSQL (pgserver) used when no DATABASE_URL is set.

The cluster lives in a project-local folder and outlives the process (`cleanup_mode=None`), so data
is kept between runs and two processes starting together share one postmaster; `stop()` ends it.

pgserver is imported only when a cluster is started, with a runtime directory of ours (`runtime_dir`),
so commands that never start one do not pay for the import, and none prints platformdirs' warning.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import stat
import tempfile
import time
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)


def runtime_dir() -> Path:
    """Where pgserver keeps its inter-process lock file (and a server's socket when the data folder's
    path is too long for a Unix socket): a private folder of this user's in the temp directory.

    pgserver asks platformdirs for the user's runtime directory when it is imported. Where
    XDG_RUNTIME_DIR is unset (containers, CI, cron, sudo) platformdirs warns and falls back to
    /tmp/runtime-<uid>, a warning nobody running caratflow can act on. Naming the folder ourselves
    also gives every caratflow process of a user the same lock, whichever environment started it.
    """
    path = Path(tempfile.gettempdir()) / f"caratflow-{os.geteuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        # Someone else made the predictable name first: never put our lock or socket in their folder.
        raise PermissionError(f"{path} is not a folder of this user's; remove it and start again")
    # XDG requires mode 0700; pgserver (as root) opens a socket folder's parents to the server's user.
    path.chmod(0o700)
    return path


@functools.cache
def _pgserver() -> ModuleType:
    """pgserver, imported with XDG_RUNTIME_DIR pointing at `runtime_dir()` (pgserver reads it at import
    time only), the caller's environment restored afterwards."""
    previous = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir())
    try:
        import pgserver
    finally:
        if previous is None:
            del os.environ["XDG_RUNTIME_DIR"]
        else:
            os.environ["XDG_RUNTIME_DIR"] = previous
    return pgserver


def start(data_dir: Path) -> str:
    """Start (or join) the embedded cluster in `data_dir` and return its connection URI."""
    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = _pgserver().get_server(data_dir, cleanup_mode=None)
    if not (data_dir / "postmaster.pid").exists():
        # pgserver hands back its handle of this data dir as it was, also after stop() (it asks psutil,
        # which counts an unreaped postmaster as running): start the postmaster again, under the
        # inter-process lock pgserver itself starts it under.
        with server._lock:
            server.ensure_postgres_running()
    log.info("embedded postgres ready", extra={"pg_dir": str(data_dir)})
    return str(server.get_uri())


# How long an immediate shutdown may take: it writes nothing, so seconds are plenty.
IMMEDIATE_STOP_SECONDS = 10.0


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
    if _gone(pid_file, timeout):
        return True
    # A fast shutdown still writes a checkpoint, which a loaded machine can take longer than `timeout`
    # over. SIGQUIT is the immediate shutdown: nothing is lost (the next start replays the WAL), it only
    # skips the checkpoint.
    log.warning("embedded postgres slow to stop; immediate shutdown", extra={"pg_dir": str(data_dir)})
    try:
        os.kill(pid, signal.SIGQUIT)
    except ProcessLookupError:
        return True
    if not _gone(pid_file, max(timeout, IMMEDIATE_STOP_SECONDS)):
        raise TimeoutError(f"embedded postgres in {data_dir} did not stop, not even by an immediate shutdown")
    return True


def _gone(pid_file: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not pid_file.exists()
