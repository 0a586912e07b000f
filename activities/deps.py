"""Per-process resources activities share: settings, the database pool, the scan store."""

from __future__ import annotations

from functools import lru_cache

from psycopg_pool import ConnectionPool

from shared.config import get_settings
from shared.db.connect import open_migrated_pool
from shared.planning.store import ScanStore, open_scan_store


@lru_cache(maxsize=1)
def pool() -> ConnectionPool:
    return open_migrated_pool(get_settings(), name="caratflow-activities")


@lru_cache(maxsize=1)
def scan_store() -> ScanStore:
    return open_scan_store(get_settings())
