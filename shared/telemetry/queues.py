"""Queue depths as observable gauges, read from PostgreSQL when the metrics are collected.

Why read at collection rather than set after each slice: a depth is a property of the database, not
of a process. Read at collection it is right in whichever process answers /api/metrics or exports
to Application Insights, including one that has run no activity.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import psycopg
from opentelemetry.metrics import CallbackOptions, Observation
from psycopg_pool import ConnectionPool

from shared.telemetry.metrics import meter

log = logging.getLogger(__name__)

# Every feed that ever ran, so an empty backlog reads 0 rather than vanishing.
_BACKLOG = """
SELECT f.feed, count(p.stone_id)
FROM (SELECT DISTINCT feed FROM runs) f LEFT JOIN raw_pending p USING (feed)
GROUP BY f.feed
"""
_OPEN_DEAD_LETTERS = """
SELECT k.kind, count(d.dead_letter_id)
FROM (VALUES ('partition'), ('consolidation')) AS k (kind)
LEFT JOIN dead_letters d ON d.kind = k.kind AND d.status = 'open'
GROUP BY k.kind
"""

_watched: ConnectionPool | None = None


def watch_queues(pool: ConnectionPool) -> None:
    """Read the depths through `pool` from now on (the process's latest pool wins)."""
    global _watched
    _watched = pool


def _read(query: str, key: str) -> Iterable[Observation]:
    """One observation per row (value of `key`, count)."""
    pool = _watched
    if pool is None or pool.closed:
        return []  # no database in this process (yet, or any more): nothing to report
    try:
        # A short wait: a collection must not hang on a busy pool.
        with pool.connection(timeout=2) as conn:
            rows = conn.execute(query).fetchall()
    except psycopg.Error as exc:
        log.warning("queue depth not read", extra={"by": key, "error": f"{type(exc).__name__}: {exc}"})
        return []
    return [Observation(count, {key: value}) for value, count in rows]


def _backlog(options: CallbackOptions) -> Iterable[Observation]:
    return _read(_BACKLOG, "feed")


def _open_dead_letters(options: CallbackOptions) -> Iterable[Observation]:
    return _read(_OPEN_DEAD_LETTERS, "kind")


consolidation_backlog = meter.create_observable_gauge(
    "caratflow.consolidation.backlog",
    callbacks=[_backlog],
    unit="{row}",
    description="Rows fetched and waiting for consolidation (raw_pending), by feed.",
)
dead_letters_open = meter.create_observable_gauge(
    "caratflow.dead_letters.open",
    callbacks=[_open_dead_letters],
    unit="{dead_letter}",
    description="Dead letters waiting for an operator (status open), by kind.",
)
