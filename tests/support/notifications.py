"""Notification records for the tests: record an event, deliver until settled, read deliveries and attempts."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from shared.db.rows import one
from shared.notify import store
from shared.notify.deliver import DeliverySettings, deliver_due
from shared.notify.events import record_event
from shared.notify.targets import EventKind


def record(database_url: str, event_kind: EventKind = "run_succeeded", details: dict[str, Any] | None = None) -> int:
    with psycopg.connect(database_url) as conn:
        event_id = record_event(conn, event_kind, "run-x", details or {"feed": "nivoda-natural", "kind": "full"})
    assert event_id is not None
    return event_id


def deliver_until_settled(pool: ConnectionPool, settings: DeliverySettings, timeout: float = 10) -> None:
    """Run the deliverer until no delivery is pending or failing."""
    deadline = time.monotonic() + timeout
    while True:
        deliver_due(pool, settings)
        with pool.connection() as conn:
            (open_,) = one(
                conn.execute(
                    "SELECT count(*) FROM notification_deliveries WHERE status IN ('pending', 'failed')"
                ).fetchone()
            )
        if open_ == 0:
            return
        assert time.monotonic() < deadline, "deliveries still open"
        time.sleep(0.02)


def deliveries(pool: ConnectionPool) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        return store.list_deliveries(conn, limit=1000)


def attempts(pool: ConnectionPool, delivery_id: int) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        return store.attempts_of(conn, delivery_id)
