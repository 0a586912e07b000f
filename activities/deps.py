"""What activities share in one worker process: the settings, the database pool, the scan store.

In Azure they are built from the app settings on first use. The local host hands in its own with
`use()`, so the activities run against the database and settings of the host that runs them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from shared.config import Settings, get_settings
from shared.db.connect import open_migrated_pool
from shared.planning.store import ScanStore, open_scan_store


@dataclass(frozen=True)
class Resources:
    settings: Settings
    pool: ConnectionPool
    scan_store: ScanStore


_lock = threading.Lock()
_current: Resources | None = None


def use(settings: Settings, pool: ConnectionPool) -> None:
    """Run activities in this process against `settings` and `pool`."""
    global _current
    with _lock:
        _current = Resources(settings, pool, open_scan_store(settings))


def resources() -> Resources:
    global _current
    with _lock:
        if _current is None:
            settings = get_settings()
            _current = Resources(
                settings, open_migrated_pool(settings, name="caratflow-activities"), open_scan_store(settings)
            )
        return _current


def settings() -> Settings:
    return resources().settings


def pool() -> ConnectionPool:
    return resources().pool


def scan_store() -> ScanStore:
    return resources().scan_store
