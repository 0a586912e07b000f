"""Notification records for the tests: record an event, deliver until settled, read deliveries and attempts."""

from __future__ import annotations

import time

import psycopg

from shared.notify import store
from shared.notify.deliver import deliver_due
from shared.notify.events import record_event


def record(database_url: str, event_kind: str = "run_succeeded", details: dict | None = None) -> int:
    with psycopg.connect(database_url) as conn:
        event_id = record_event(conn, event_kind, "run-x", details or {"feed": "nivoda-natural", "kind": "full"})
    assert event_id is not None
    return event_id


def deliver_until_settled(pool, settings, timeout: float = 10) -> None:
    """Run the deliverer until no delivery is pending or failing."""
    deadline = time.monotonic() + timeout
    while True:
        deliver_due(pool, settings)
        with pool.connection() as conn:
            open_ = conn.execute(
                "SELECT count(*) FROM notification_deliveries WHERE status IN ('pending', 'failed')"
            ).fetchone()[0]
        if open_ == 0:
            return
        assert time.monotonic() < deadline, "deliveries still open"
        time.sleep(0.02)


def deliveries(pool) -> list[dict]:
    with pool.connection() as conn:
        return store.list_deliveries(conn, limit=1000)


def attempts(pool, delivery_id: int) -> list[dict]:
    with pool.connection() as conn:
        return store.attempts_of(conn, delivery_id)
