"""The deliveries' SQL: fan-out, claim, outcome, and what operators list and re-queue.

A claim takes one due delivery with FOR UPDATE SKIP LOCKED and, in the same statement, counts the
attempt, records its start and pushes next_attempt_at out by a lease; the send happens after the
claim commits, with no transaction open. Another deliverer skips the row while it is locked and
finds it not due while the lease runs, so two never send it at once. A sender that dies leaves an
attempt without outcome, and the delivery is due again when the lease ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from shared.notify.targets import WebhookTarget

DeliveryStatus = Literal["pending", "delivered", "failed", "given_up"]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = ("pending", "delivered", "failed", "given_up")
FAN_OUT_BATCH = 500


@dataclass(frozen=True)
class Claimed:
    """A delivery this deliverer now holds for one attempt, with the event it carries."""

    delivery_id: int
    target: str
    attempt: int  # the delivery's attempts so far, this one included
    round_attempts: int  # attempts since the last re-queue: what NOTIFY_MAX_ATTEMPTS bounds
    event_id: int
    event_kind: str
    subject: str
    details: dict[str, Any]
    occurred_at: datetime


@dataclass(frozen=True)
class Outcome:
    status: Literal["delivered", "failed", "given_up"]
    status_code: int | None
    error: str | None
    duration_ms: int
    retry_in: timedelta | None = None  # when status is 'failed'

    @property
    def attempt_outcome(self) -> str:
        return {"delivered": "delivered", "failed": "retry", "given_up": "given_up"}[self.status]


def fan_out(conn: psycopg.Connection, targets: Iterable[WebhookTarget]) -> list[tuple[int, str, list[str]]]:
    """Create the deliveries of events not fanned out yet; return (event_id, event_kind, targets) of each."""
    targets = list(targets)
    with conn.transaction():
        events = conn.execute(
            """SELECT event_id, event_kind FROM notification_events WHERE fanned_out_at IS NULL
               ORDER BY event_id LIMIT %s FOR UPDATE SKIP LOCKED""",
            (FAN_OUT_BATCH,),
        ).fetchall()
        fanned = [(event_id, kind, [t.name for t in targets if t.receives(kind)]) for event_id, kind in events]
        rows = [(event_id, name) for event_id, _, names in fanned for name in names]
        if rows:
            with conn.cursor() as cur:
                cur.executemany(
                    """INSERT INTO notification_deliveries (event_id, target) VALUES (%s, %s)
                       ON CONFLICT (event_id, target) DO NOTHING""",
                    rows,
                )
        if events:
            conn.execute(
                "UPDATE notification_events SET fanned_out_at = now() WHERE event_id = ANY(%s)",
                ([event_id for event_id, _ in events],),
            )
    return fanned


_CLAIM = """
WITH due AS (
    SELECT delivery_id FROM notification_deliveries
    WHERE status IN ('pending', 'failed') AND next_attempt_at <= now()
    ORDER BY next_attempt_at, delivery_id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE notification_deliveries d
    SET attempts = d.attempts + 1, next_attempt_at = now() + %(lease)s, updated_at = now()
    FROM due WHERE d.delivery_id = due.delivery_id
    RETURNING d.delivery_id, d.target, d.attempts, d.attempts - d.requeued_at_attempt AS round_attempts, d.event_id
), started AS (
    INSERT INTO notification_attempts (delivery_id, attempt) SELECT delivery_id, attempts FROM claimed
)
SELECT c.delivery_id, c.target, c.attempts AS attempt, c.round_attempts, c.event_id,
       e.event_kind, e.subject, e.details, e.occurred_at
FROM claimed c JOIN notification_events e USING (event_id)
"""


def claim_next(conn: psycopg.Connection, lease: timedelta) -> Claimed | None:
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_CLAIM, {"lease": lease}).fetchone()
    return None if row is None else Claimed(**row)


def finish(conn: psycopg.Connection, claimed: Claimed, outcome: Outcome) -> bool:
    """Record the attempt's outcome; False when a later claim owns the delivery (this lease lapsed)."""
    params = {
        "id": claimed.delivery_id,
        "attempt": claimed.attempt,
        "status": outcome.status,
        "code": outcome.status_code,
        "error": outcome.error,
        "ms": outcome.duration_ms,
        "outcome": outcome.attempt_outcome,
        "retry_in": outcome.retry_in or timedelta(0),
    }
    with conn.transaction():
        conn.execute(
            """UPDATE notification_attempts SET outcome = %(outcome)s, status_code = %(code)s, error = %(error)s,
                      duration_ms = %(ms)s
               WHERE delivery_id = %(id)s AND attempt = %(attempt)s""",
            params,
        )
        # attempts = this attempt: the fence against a deliverer whose lease lapsed mid-send.
        return bool(
            conn.execute(
                """UPDATE notification_deliveries SET status = %(status)s, last_status_code = %(code)s,
                          last_error = %(error)s, updated_at = now(),
                          delivered_at = CASE WHEN %(status)s = 'delivered' THEN now() END,
                          next_attempt_at = CASE WHEN %(status)s = 'failed' THEN now() + %(retry_in)s
                                                 ELSE next_attempt_at END
                   WHERE delivery_id = %(id)s AND attempts = %(attempt)s""",
                params,
            ).rowcount
        )


_LIST = """
SELECT d.delivery_id, d.status, d.target, e.event_kind, e.subject, e.event_id, e.occurred_at, d.attempts,
       d.last_status_code, d.last_error, d.next_attempt_at, d.delivered_at
FROM notification_deliveries d JOIN notification_events e USING (event_id)
WHERE (%(status)s::text IS NULL OR d.status = %(status)s)
  AND (%(delivery_id)s::bigint IS NULL OR d.delivery_id = %(delivery_id)s)
ORDER BY d.delivery_id DESC LIMIT %(limit)s
"""


def list_deliveries(
    conn: psycopg.Connection,
    *,
    status: DeliveryStatus | None = None,
    delivery_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Deliveries with their event, newest first (what `caratflow notify list` prints)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_LIST, {"status": status, "delivery_id": delivery_id, "limit": limit}).fetchall()


def attempts_of(conn: psycopg.Connection, delivery_id: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT attempt, started_at, outcome, status_code, error, duration_ms FROM notification_attempts
               WHERE delivery_id = %s ORDER BY attempt""",
            (delivery_id,),
        ).fetchall()


def requeue(conn: psycopg.Connection, delivery_id: int) -> None:
    """Put a given-up delivery back to work now, with a fresh NOTIFY_MAX_ATTEMPTS.

    Only given_up: a failed one may be in flight (its lease pushed next_attempt_at out), and making
    it due now could send it twice; it retries by itself anyway.
    """
    with conn.transaction():
        row = conn.execute(
            "SELECT status FROM notification_deliveries WHERE delivery_id = %s FOR UPDATE", (delivery_id,)
        ).fetchone()
        if row is None:
            raise LookupError(f"no delivery {delivery_id}")
        if row[0] != "given_up":
            raise ValueError(f"delivery {delivery_id} is {row[0]}; only given_up deliveries are re-queued")
        conn.execute(
            """UPDATE notification_deliveries SET status = 'pending', next_attempt_at = now(),
                      requeued_at_attempt = attempts, updated_at = now()
               WHERE delivery_id = %s""",
            (delivery_id,),
        )
