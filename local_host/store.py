"""The local host's durable state in PostgreSQL: instances, history, messages, work items.

Every episode is applied in ONE transaction together with the message it consumed, so a host killed
at any moment either applied an episode entirely or not at all; the message is then consumed again.
Activity results are delivered in the transaction that deletes their work item, so a result reaches
its orchestration exactly once even though the activity itself may run more than once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from local_host.engine import Episode, Instance, child_result, execution_started

ACTIVE = ("Pending", "Running")


class InstanceExists(Exception):
    """An instance with this id is still pending or running."""


class InstanceNotFound(KeyError):
    pass


@dataclass(frozen=True)
class Claimed:
    """A message to apply, with its instance (row-locked until the transaction ends)."""

    message_id: int
    event: dict[str, Any]
    current: bool  # False: the message belongs to a finished instance or an earlier execution
    instance: Instance
    execution_id: uuid.UUID
    parent_task_id: int | None
    history: list[dict[str, Any]]


@dataclass(frozen=True)
class WorkItem:
    work_id: int
    instance_id: str
    execution_id: uuid.UUID
    task_id: int
    name: str
    input: str | None


def create_instance(
    conn: psycopg.Connection,
    name: str,
    instance_id: str,
    input_json: str | None,
    now: datetime,
    *,
    parent: tuple[str, int] | None = None,
) -> None:
    """Insert a Pending instance and its ExecutionStarted message (replacing a finished one with this id)."""
    existing = conn.execute(
        "SELECT status FROM durable_instances WHERE instance_id = %s FOR UPDATE", (instance_id,)
    ).fetchone()
    if existing is not None:
        if existing[0] in ACTIVE:
            raise InstanceExists(f"instance {instance_id!r} is {existing[0].lower()}")
        conn.execute("DELETE FROM durable_instances WHERE instance_id = %s", (instance_id,))
    execution_id = uuid.uuid4()
    parent_id, parent_task = parent or (None, None)
    conn.execute(
        """INSERT INTO durable_instances (instance_id, name, execution_id, status, input,
                                          parent_instance_id, parent_task_id, created_at, updated_at)
           VALUES (%s, %s, %s, 'Pending', %s, %s, %s, %s, %s)""",
        (instance_id, name, execution_id, input_json, parent_id, parent_task, now, now),
    )
    _send(conn, instance_id, execution_id, execution_started(name, input_json, now), now)


def claim_message(conn: psycopg.Connection, now: datetime) -> Claimed | None:
    """The oldest due message of an instance no other dispatcher holds. Call inside a transaction."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT m.message_id, m.event, m.execution_id AS message_execution, i.*
               FROM durable_messages m JOIN durable_instances i USING (instance_id)
               WHERE m.visible_at <= %s
               ORDER BY m.visible_at, m.message_id
               LIMIT 1
               FOR UPDATE OF i SKIP LOCKED""",
            (now,),
        ).fetchone()
    if row is None:
        return None
    current = row["message_execution"] == row["execution_id"] and row["status"] in ACTIVE
    history = []
    if current:
        history = [
            e
            for (e,) in conn.execute(
                "SELECT event FROM durable_history WHERE instance_id = %s AND execution_id = %s ORDER BY seq",
                (row["instance_id"], row["execution_id"]),
            )
        ]
    instance = Instance(
        instance_id=row["instance_id"],
        name=row["name"],
        input=row["input"],
        parent_instance_id=row["parent_instance_id"],
        next_task_id=row["next_task_id"],
        actions_seen=row["actions_seen"],
        retries=row["retries"],
    )
    return Claimed(
        row["message_id"], row["event"], current, instance, row["execution_id"], row["parent_task_id"], history
    )


def drop_message(conn: psycopg.Connection, message_id: int) -> None:
    conn.execute("DELETE FROM durable_messages WHERE message_id = %s", (message_id,))


def apply_episode(conn: psycopg.Connection, claimed: Claimed, episode: Episode, now: datetime) -> None:
    """Persist an episode's decisions and consume its message, in the caller's transaction."""
    instance, execution_id = claimed.instance, claimed.execution_id
    drop_message(conn, claimed.message_id)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO durable_history (instance_id, execution_id, seq, event) VALUES (%s, %s, %s, %s)",
            [
                (instance.instance_id, execution_id, len(claimed.history) + i, Jsonb(e))
                for i, e in enumerate(episode.history)
            ],
        )
        cur.executemany(
            "INSERT INTO durable_work (instance_id, execution_id, task_id, name, input) VALUES (%s, %s, %s, %s, %s)",
            [(instance.instance_id, execution_id, a.task_id, a.name, a.input) for a in episode.activities],
        )
    for timer in episode.timers:
        _send(conn, instance.instance_id, execution_id, timer.event, timer.fire_at)
    for child in episode.children:
        create_instance(
            conn, child.name, child.instance_id, child.input, now, parent=(instance.instance_id, child.task_id)
        )
    if episode.continue_as_new is not None:
        # A fresh execution: new history, numbering from zero; messages of the old one are dropped.
        new_execution = uuid.uuid4()
        conn.execute(
            """UPDATE durable_instances SET execution_id = %s, input = %s, next_task_id = 0, actions_seen = 0,
                      retries = '[]', custom_status = %s, status = 'Running', updated_at = %s
               WHERE instance_id = %s""",
            (new_execution, episode.continue_as_new, episode.custom_status, now, instance.instance_id),
        )
        conn.execute(
            "DELETE FROM durable_history WHERE instance_id = %s AND execution_id = %s",
            (instance.instance_id, execution_id),
        )
        _send(
            conn,
            instance.instance_id,
            new_execution,
            execution_started(instance.name, episode.continue_as_new, now),
            now,
        )
        return
    conn.execute(
        """UPDATE durable_instances SET status = %s, output = %s, error = %s, custom_status = %s,
                  next_task_id = %s, actions_seen = %s, retries = %s, updated_at = %s
           WHERE instance_id = %s""",
        (
            episode.status,
            episode.output,
            episode.error,
            episode.custom_status,
            instance.next_task_id,
            instance.actions_seen,
            Jsonb(instance.retries),
            now,
            instance.instance_id,
        ),
    )
    if episode.status != "Running" and instance.parent_instance_id is not None:
        _notify_parent(
            conn,
            instance.parent_instance_id,
            claimed.parent_task_id,
            episode.status,
            episode.output,
            episode.error,
            now,
        )


def claim_work(conn: psycopg.Connection, host_id: str, lease: timedelta) -> WorkItem | None:
    """Lease the oldest unleased (or expired) work item of a running instance."""
    row = conn.execute(
        """UPDATE durable_work w SET locked_by = %(host)s, locked_until = clock_timestamp() + %(lease)s,
                  started_count = started_count + 1
           WHERE work_id = (
               SELECT work_id FROM durable_work
               WHERE locked_until IS NULL OR locked_until < clock_timestamp()
               ORDER BY work_id LIMIT 1 FOR UPDATE SKIP LOCKED)
           RETURNING work_id, instance_id, execution_id, task_id, name, input""",
        {"host": host_id, "lease": lease},
    ).fetchone()
    return None if row is None else WorkItem(*row)


def finish_work(
    conn: psycopg.Connection, item: WorkItem, host_id: str, result_event: dict[str, Any], now: datetime
) -> bool:
    """Deliver a work item's result and delete it, if this host still holds it. False: lease was lost."""
    deleted = conn.execute(
        "DELETE FROM durable_work WHERE work_id = %s AND locked_by = %s", (item.work_id, host_id)
    ).rowcount
    if deleted:
        _send(conn, item.instance_id, item.execution_id, result_event, now)
    return bool(deleted)


def renew_leases(conn: psycopg.Connection, host_id: str, work_ids: list[int], lease: timedelta) -> None:
    if work_ids:
        conn.execute(
            "UPDATE durable_work SET locked_until = clock_timestamp() + %s WHERE locked_by = %s AND work_id = ANY(%s)",
            (lease, host_id, work_ids),
        )


def release_leases(conn: psycopg.Connection, host_id: str) -> int:
    return conn.execute(
        "UPDATE durable_work SET locked_by = NULL, locked_until = NULL WHERE locked_by = %s", (host_id,)
    ).rowcount


def lease_holders(conn: psycopg.Connection) -> list[str]:
    return [h for (h,) in conn.execute("SELECT DISTINCT locked_by FROM durable_work WHERE locked_by IS NOT NULL")]


def terminate(conn: psycopg.Connection, instance_id: str, reason: str, now: datetime) -> list[str]:
    """Terminate an active instance and its active descendants; return the ids terminated."""
    rows = conn.execute(
        """WITH RECURSIVE tree AS (
               SELECT instance_id FROM durable_instances WHERE instance_id = %s
               UNION ALL
               SELECT c.instance_id FROM durable_instances c JOIN tree t ON c.parent_instance_id = t.instance_id)
           UPDATE durable_instances SET status = 'Terminated', error = %s, updated_at = %s
           WHERE instance_id IN (SELECT instance_id FROM tree) AND status IN ('Pending', 'Running')
           RETURNING instance_id""",
        (instance_id, reason, now),
    ).fetchall()
    ids = [r[0] for r in rows]
    conn.execute("DELETE FROM durable_work WHERE instance_id = ANY(%s)", (ids,))
    conn.execute("DELETE FROM durable_messages WHERE instance_id = ANY(%s)", (ids,))
    return ids


def instance_row(conn: psycopg.Connection, instance_id: str) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT instance_id, name, status, input, output, custom_status, error, parent_instance_id,
                      created_at, updated_at FROM durable_instances WHERE instance_id = %s""",
            (instance_id,),
        ).fetchone()
    if row is None:
        raise InstanceNotFound(instance_id)
    return row


def instance_rows(conn: psycopg.Connection, statuses: list[str] | None, limit: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT instance_id, name, status, input, output, custom_status, error, parent_instance_id,
                      created_at, updated_at FROM durable_instances
               WHERE (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s))
               ORDER BY created_at DESC, instance_id LIMIT %(limit)s""",
            {"statuses": statuses, "limit": limit},
        ).fetchall()


def _send(
    conn: psycopg.Connection, instance_id: str, execution_id: uuid.UUID, event: dict[str, Any], visible_at: datetime
) -> None:
    conn.execute(
        "INSERT INTO durable_messages (instance_id, execution_id, event, visible_at) VALUES (%s, %s, %s, %s)",
        (instance_id, execution_id, Jsonb(event), visible_at),
    )


def _notify_parent(
    conn: psycopg.Connection,
    parent_id: str,
    task_id: int | None,
    status: str,
    output: str | None,
    error: str | None,
    now: datetime,
) -> None:
    row = conn.execute("SELECT execution_id FROM durable_instances WHERE instance_id = %s", (parent_id,)).fetchone()
    if row is None or task_id is None:
        return  # the parent was purged meanwhile; nobody waits for this result
    _send(conn, parent_id, row[0], child_result(task_id, status, output, error, now), now)
