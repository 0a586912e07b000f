"""Recording notification events: in the caller's transaction, with no network involved.

An event is an outbox row. The deliverer (deliver.py) fans it out into one delivery per webhook that
subscribes to its kind and sends those; so a status change and the event that reports it commit or
roll back together, and a webhook that is down never slows the change down.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from shared.notify.targets import EVENT_KINDS, EventKind

_INSERT = """
INSERT INTO notification_events (event_kind, subject, details, dedupe_key) VALUES (%s, %s, %s, %s)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING event_id
"""

# A blocked caller keeps sending; one event per caller per window is what an operator wants to see.
AUTH_BLOCKED_WINDOW = timedelta(hours=1)


def _params(
    event_kind: str, subject: str, details: Mapping[str, Any], dedupe_key: str | None
) -> tuple[str, str, Jsonb, str | None]:
    if event_kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {event_kind!r}; known: {', '.join(EVENT_KINDS)}")
    # default=str: run ids, times and decimals in details arrive as their text.
    return event_kind, subject, Jsonb(dict(details), dumps=partial(json.dumps, default=str)), dedupe_key


def record_event(
    conn: psycopg.Connection,
    event_kind: EventKind,
    subject: str,
    details: Mapping[str, Any],
    *,
    dedupe_key: str | None = None,
) -> int | None:
    """Record an event in the current transaction; return its id, or None when `dedupe_key` was seen."""
    row = conn.execute(_INSERT, _params(event_kind, subject, details, dedupe_key)).fetchone()
    return None if row is None else row[0]


async def record_event_async(
    conn: psycopg.AsyncConnection,
    event_kind: EventKind,
    subject: str,
    details: Mapping[str, Any],
    *,
    dedupe_key: str | None = None,
) -> int | None:
    """record_event for an async connection (the API's)."""
    cursor = await conn.execute(_INSERT, _params(event_kind, subject, details, dedupe_key))
    row = await cursor.fetchone()
    return None if row is None else row[0]


async def record_auth_blocked(
    conn: psycopg.AsyncConnection, subject: str, details: Mapping[str, Any], *, now: datetime | None = None
) -> int | None:
    """A caller was blocked after repeated failed authentications: one event per caller per hour.

    `subject` names the caller ('ip:203.0.113.7' or 'key:ck0123456789abcdef'); `details` carries what
    an operator needs (reason, client_ip, key_id). Never put a secret or a signature in either.
    """
    window = int((now or datetime.now(UTC)).timestamp() // AUTH_BLOCKED_WINDOW.total_seconds())
    return await record_event_async(
        conn, "auth_blocked", subject, details, dedupe_key=f"auth_blocked:{subject}:{window}"
    )
