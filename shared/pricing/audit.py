"""The pricing audit trail: who changed which rule set, when, what changed (the rule-level diff) and why.

Rows are only ever added (`pricing_audit`, migration 0014: a trigger refuses UPDATE, DELETE and TRUNCATE,
and shared/retention has no rule for it). sets.py records every lifecycle step in the transaction that
makes it. The repricing job (shared/pricing/repricing.py) ends each activation with one outcome row
(`record_outcome`): an activation is in progress from its activate or revert row until that row exists.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, model_validator

from shared.db.rows import one
from shared.pricing.diff import RuleSetDiff

# PostgreSQL answers in the session's time zone; every time this package hands out is in UTC.
UtcTime = Annotated[datetime, AfterValidator(lambda moment: moment.astimezone(UTC))]

Action = Literal[
    "create", "copy", "edit", "delete_draft", "activate", "revert", "job_finished", "job_cancelled", "job_failed"
]
OutcomeAction = Literal["job_finished", "job_cancelled", "job_failed"]
ACTIONS: tuple[str, ...] = get_args(Action)


class Actor(BaseModel, frozen=True):
    """Who acts: an API key (its client and key id), an operator at the CLI, or a component of ours."""

    kind: Literal["api_key", "operator", "system"]
    name: str = Field(min_length=1)  # the API client, the operator's name, or the component ("repricing")
    key_id: str | None = None

    @model_validator(mode="after")
    def _key_only_for_api_keys(self) -> Actor:
        if (self.kind == "api_key") != (self.key_id is not None):
            raise ValueError("an API key actor has a key_id, and only it")
        return self

    @classmethod
    def api_key(cls, client_id: str, key_id: str) -> Actor:
        return cls(kind="api_key", name=client_id, key_id=key_id)

    @classmethod
    def operator(cls, name: str) -> Actor:
        return cls(kind="operator", name=name)

    @classmethod
    def system(cls, component: str) -> Actor:
        return cls(kind="system", name=component)

    @property
    def label(self) -> str:
        """`api_key:<client>:<key id>`, `operator:<name>` or `system:<component>` (pricing_rule_sets.created_by)."""
        return ":".join(part for part in (self.kind, self.name, self.key_id) if part is not None)


class Outcome(BaseModel):
    """What a repricing job reports when it ends."""

    stones_repriced: int = Field(ge=0)
    value_delta_cents: int
    duration_ms: int = Field(ge=0)


class AuditEntry(BaseModel):
    audit_id: int
    recorded_at: UtcTime
    action: Action
    actor: Actor
    pricing_version: int
    from_version: int | None
    diff: RuleSetDiff | None
    comment: str
    activation_id: int | None
    outcome: Outcome | None
    details: dict[str, Any]


class AuditQuery(BaseModel):
    """Filters of the audit list; every one optional. Newest first; `before` pages on (an audit_id)."""

    version: int | None = None
    action: Action | None = None
    actor: str | None = None  # an actor's name: the API client, operator or component
    since: AwareDatetime | None = None  # recorded_at >= since
    until: AwareDatetime | None = None  # recorded_at < until
    before: int | None = None
    limit: int = Field(default=100, ge=1, le=1000)


_COLUMNS = sql.SQL(
    "audit_id, recorded_at, action, actor_kind, actor_name, actor_key_id, pricing_version, from_version, diff,"
    " comment, activation_id, stones_repriced, value_delta_cents, duration_ms, details"
)


def record(
    conn: psycopg.Connection,
    action: Action,
    actor: Actor,
    version: int,
    *,
    from_version: int | None = None,
    diff: RuleSetDiff | None = None,
    comment: str = "",
    activation_id: int | None = None,
    outcome: Outcome | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one row; its audit_id."""
    row = conn.execute(
        """INSERT INTO pricing_audit (action, actor_kind, actor_name, actor_key_id, pricing_version, from_version,
                                      diff, comment, activation_id, stones_repriced, value_delta_cents,
                                      duration_ms, details)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING audit_id""",
        (
            action,
            actor.kind,
            actor.name,
            actor.key_id,
            version,
            from_version,
            None if diff is None else Jsonb(diff.model_dump(mode="json")),
            comment,
            activation_id,
            None if outcome is None else outcome.stones_repriced,
            None if outcome is None else outcome.value_delta_cents,
            None if outcome is None else outcome.duration_ms,
            Jsonb(details or {}),
        ),
    ).fetchone()
    return int(one(row)[0])


def record_outcome(
    conn: psycopg.Connection,
    activation_id: int,
    action: OutcomeAction,
    outcome: Outcome | None,
    *,
    actor: Actor | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """End activation `activation_id` (an activate or revert row) with the job's outcome; its audit_id.

    Idempotent: a second call (a retried activity) adds nothing and answers the first row's id. `actor`
    is the repricing job unless someone else ended it (the operator who cancelled it).
    """
    with conn.transaction():
        started = conn.execute(
            "SELECT pricing_version, from_version, action FROM pricing_audit WHERE audit_id = %s", (activation_id,)
        ).fetchone()
        if started is None or started[2] not in ("activate", "revert"):
            raise LookupError(f"no activation {activation_id} in the pricing audit")
        try:
            with conn.transaction():
                return record(
                    conn,
                    action,
                    actor or Actor.system("repricing"),
                    started[0],
                    from_version=started[1],
                    activation_id=activation_id,
                    outcome=outcome,
                    details=details,
                )
        except psycopg.errors.UniqueViolation:  # ended already (pricing_audit_one_outcome)
            existing = conn.execute(
                "SELECT audit_id FROM pricing_audit WHERE activation_id = %s", (activation_id,)
            ).fetchone()
            return int(one(existing)[0])


def entries(conn: psycopg.Connection, query: AuditQuery) -> list[AuditEntry]:
    """The rows `query` selects, newest first."""
    where: list[sql.Composable] = []
    params: list[Any] = []
    for condition, value in (
        ("pricing_version = %s", query.version),
        ("action = %s", query.action),
        ("actor_name = %s", query.actor),
        ("recorded_at >= %s", query.since),
        ("recorded_at < %s", query.until),
        ("audit_id < %s", query.before),
    ):
        if value is not None:
            where.append(sql.SQL(condition))
            params.append(value)
    statement = sql.SQL("SELECT {} FROM pricing_audit WHERE {} ORDER BY audit_id DESC LIMIT %s").format(
        _COLUMNS, sql.SQL(" AND ").join(where) if where else sql.SQL("true")
    )
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(statement, [*params, query.limit]).fetchall()
    return [_entry(row) for row in rows]


def open_activation(conn: psycopg.Connection) -> AuditEntry | None:
    """The activate or revert row no job has ended yet, if any (at most one: sets.begin_activation)."""
    statement = sql.SQL(
        """SELECT {} FROM pricing_audit a
           WHERE a.action IN ('activate', 'revert')
             AND NOT EXISTS (SELECT 1 FROM pricing_audit o WHERE o.activation_id = a.audit_id)
           ORDER BY a.audit_id DESC LIMIT 1"""
    ).format(_COLUMNS)
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(statement).fetchone()
    return None if row is None else _entry(row)


def _entry(row: dict[str, Any]) -> AuditEntry:
    outcome = None
    if row["stones_repriced"] is not None:
        outcome = Outcome(
            stones_repriced=row["stones_repriced"],
            value_delta_cents=row["value_delta_cents"],
            duration_ms=row["duration_ms"],
        )
    return AuditEntry(
        audit_id=row["audit_id"],
        recorded_at=row["recorded_at"],
        action=row["action"],
        actor=Actor(kind=row["actor_kind"], name=row["actor_name"], key_id=row["actor_key_id"]),
        pricing_version=row["pricing_version"],
        from_version=row["from_version"],
        diff=None if row["diff"] is None else RuleSetDiff.model_validate(row["diff"]),
        comment=row["comment"],
        activation_id=row["activation_id"],
        outcome=outcome,
        details=row["details"],
    )
