"""What activities share in one worker process: the settings, the database pool, the scan store.

In Azure they are built from the app settings on first use. The local host hands in its own with
`use()`, so the activities run against the database and settings of the host that runs them.
Either way telemetry is configured here, and the queue-depth gauges read through the activities' pool.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from psycopg_pool import ConnectionPool

from shared.config import Settings, get_settings
from shared.db.connect import open_migrated_pool
from shared.feed.registry import get_feed
from shared.feed.source import FeedSource
from shared.planning.store import ScanStore, open_scan_store
from shared.telemetry import configure as configure_telemetry
from shared.telemetry import watch_queues


@dataclass(frozen=True)
class Resources:
    settings: Settings
    pool: ConnectionPool
    scan_store: ScanStore
    # One source (and so one HTTP client and connection pool) per feed per process, shared by
    # every activity thread, instead of a client per activity left for the garbage collector.
    sources: dict[str, FeedSource] = field(default_factory=dict)


_lock = threading.Lock()
_current: Resources | None = None


def use(settings: Settings, pool: ConnectionPool) -> None:
    """Run activities in this process against `settings` and `pool`."""
    global _current
    configure_telemetry()
    with _lock:
        _current = Resources(settings, pool, open_scan_store(settings))
    watch_queues(pool)


def resources() -> Resources:
    global _current
    with _lock:
        if _current is None:
            configure_telemetry()
            settings = get_settings()
            _current = Resources(
                settings, open_migrated_pool(settings, name="caratflow-activities"), open_scan_store(settings)
            )
            watch_queues(_current.pool)
        return _current


def settings() -> Settings:
    return resources().settings


def pool() -> ConnectionPool:
    return resources().pool


def scan_store() -> ScanStore:
    return resources().scan_store


def source(feed: str) -> FeedSource:
    """The feed's source for this process, opened on first use."""
    current = resources()
    with _lock:
        if feed not in current.sources:
            current.sources[feed] = get_feed(feed).open_source(current.settings, current.pool)
        return current.sources[feed]
