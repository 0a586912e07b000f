"""The rule-set lifecycle: the one module that writes rule sets and owns their state rules.

A set is born a draft (from scratch, or a copy of any version) and only a draft changes: its note,
defaults and rules are replaced whole by an edit, or it is deleted. Activation makes a draft (or, as a
revert, a retired set) the active one; the set it replaces is retired. An active or retired set never
changes and is never deleted; migration 0014's triggers hold every other writer to the same rules.
Versions are numbered in order of creation and a number is never given twice (a deleted draft's stays
in the audit trail). Every step is recorded in shared/pricing/audit.py in its own transaction.

Activation is split with the repricing job (shared/pricing/repricing.py):
1. `begin_activation` (the API's activate and revert) checks that the set is a draft or retired set,
   that validation finds no error, that no other activation is in progress, and that a comment says why;
   it records the activate or revert row and returns the `Activation` the job runs. From then until the
   job ends the activation, the draft cannot be edited or deleted, and no other activation begins.
2. The job calls `mark_active` when it starts (the set becomes active, the previous one retired) and
   reprices the catalogue; a cancel that goes back calls `mark_active` with the activation's
   `from_version`.
3. The job ends the activation with `audit.record_outcome` (finished, cancelled or failed). An activation
   whose job never started (the start itself failed) is ended the same way, as failed.
Every function takes a connection and runs in a transaction of its own (a savepoint inside the caller's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import BaseModel, Field, model_validator

from shared.db.rows import one
from shared.pricing import audit
from shared.pricing.audit import Actor, UtcTime
from shared.pricing.diff import RuleSetDiff, diff
from shared.pricing.repository import rule_set
from shared.pricing.rules import PriceAdjustments, PricingRule, RuleSet
from shared.pricing.validate import Finding, has_errors, validate

Status = Literal["draft", "active", "retired"]

# Serialises numbering new versions and beginning activations ("prcsets" in ASCII, as in pg_locks).
LIFECYCLE_LOCK_KEY = 0x70726373657473
MAX_RULES = 500
_ADJUSTMENTS = tuple(PriceAdjustments.model_fields)
_RULE_COLUMNS = tuple(name for name in PricingRule.model_fields if name != "rule_id")
_SUMMARY = """SELECT s.pricing_version, s.status, s.note, s.created_at, s.created_by, s.copied_from, s.revision,
                     s.updated_at, s.activated_at, s.retired_at,
                     (SELECT count(*) FROM pricing_rules r WHERE r.pricing_version = s.pricing_version) AS rule_count
              FROM pricing_rule_sets s"""


class LifecycleError(Exception):
    """The set's state does not allow this (HTTP 409)."""


class NoSuchVersion(LookupError):
    pass


class NotADraft(LifecycleError):
    pass


class ActivationInProgress(LifecycleError):
    pass


class RevisionConflict(LifecycleError):
    """The draft changed since the caller read it (HTTP 412 on If-Match)."""


class CommentRequired(ValueError):
    pass


class InvalidRuleSet(ValueError):
    """Validation found errors (HTTP 422 with the findings)."""

    def __init__(self, version: int, findings: list[Finding]) -> None:
        super().__init__(f"pricing version {version} has errors: " + " ".join(f.message for f in findings))
        self.findings = findings


class RuleSetContent(BaseModel):
    """What a draft holds and an edit replaces whole: its note, defaults and rules (rule ids ignored)."""

    note: str = ""
    defaults: PriceAdjustments = Field(default_factory=PriceAdjustments)
    # A bound on what one request may ask validation and the pricing CASE to handle; retailers' sets are tens.
    rules: list[PricingRule] = Field(default=[], max_length=MAX_RULES)

    @model_validator(mode="after")
    def _priorities_unique(self) -> RuleSetContent:
        priorities = [rule.priority for rule in self.rules]
        if len(set(priorities)) != len(priorities):
            raise ValueError("two rules have the same priority")
        return self

    def rule_set(self, version: int = 0) -> RuleSet:
        """As a set to validate before storing it (validation needs no rule ids)."""
        return RuleSet(version, self.rules, self.defaults)


class RuleSetSummary(BaseModel):
    pricing_version: int
    status: Status
    note: str
    created_at: UtcTime
    created_by: str
    copied_from: int | None
    revision: int
    updated_at: UtcTime
    activated_at: UtcTime | None
    retired_at: UtcTime | None
    rule_count: int


class RuleSetDetail(RuleSetSummary):
    defaults: PriceAdjustments
    rules: list[PricingRule]

    def rule_set(self) -> RuleSet:
        return RuleSet(self.pricing_version, self.rules, self.defaults)


@dataclass(frozen=True)
class Activation:
    """What the repricing job runs: make `pricing_version` active in place of `from_version`."""

    activation_id: int  # the activate or revert row of the audit trail
    action: Literal["activate", "revert"]
    pricing_version: int
    from_version: int | None  # the active version when the activation began
    actor: Actor
    comment: str
    requested_at: datetime


def list_sets(conn: psycopg.Connection, status: Status | None = None) -> list[RuleSetSummary]:
    """Every set (or those of `status`), newest first."""
    statement = _SUMMARY + " WHERE %(status)s::text IS NULL OR s.status = %(status)s ORDER BY s.pricing_version DESC"
    with conn.cursor(row_factory=dict_row) as cur:
        return [RuleSetSummary(**row) for row in cur.execute(statement, {"status": status})]


def get(conn: psycopg.Connection, version: int) -> RuleSetDetail:
    # The row lock waits for an edit under way, so the revision read goes with the rules read.
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_SUMMARY + " WHERE s.pricing_version = %s FOR SHARE OF s", (version,)).fetchone()
        if row is None:
            raise NoSuchVersion(f"no pricing version {version}")
        rules = rule_set(conn, version)
    return RuleSetDetail(**row, defaults=rules.defaults, rules=rules.rules)


def create(conn: psycopg.Connection, actor: Actor, content: RuleSetContent | None = None) -> RuleSetDetail:
    """A new draft holding `content` (empty if none)."""
    content = content or RuleSetContent()
    with conn.transaction():
        version = _new_version(conn, content, actor, copied_from=None)
        created = get(conn, version)
        audit.record(conn, "create", actor, version, diff=diff(None, created.rule_set()))
    return created


def copy(conn: psycopg.Connection, source: int, actor: Actor, note: str | None = None) -> RuleSetDetail:
    """A new draft with the rules and defaults of version `source` (any status)."""
    with conn.transaction():
        original = get(conn, source)
        content = RuleSetContent(
            note=original.note if note is None else note, defaults=original.defaults, rules=original.rules
        )
        version = _new_version(conn, content, actor, copied_from=source)
        audit.record(conn, "copy", actor, version, from_version=source, diff=RuleSetDiff())
        return get(conn, version)


def edit(
    conn: psycopg.Connection,
    version: int,
    content: RuleSetContent,
    actor: Actor,
    *,
    expected_revision: int | None = None,
    comment: str = "",
) -> RuleSetDetail:
    """Replace a draft's note, defaults and rules; `expected_revision` refuses an edit of a changed draft."""
    with conn.transaction():
        revision = _lock_draft(conn, version)
        if expected_revision is not None and expected_revision != revision:
            raise RevisionConflict(f"pricing version {version} is at revision {revision}, not {expected_revision}")
        before = rule_set(conn, version)
        conn.execute("DELETE FROM pricing_rules WHERE pricing_version = %s", (version,))
        _write(conn, version, content)
        conn.execute(
            """UPDATE pricing_rule_sets SET revision = revision + 1, updated_at = now()
               WHERE pricing_version = %s""",
            (version,),
        )
        after = get(conn, version)
        audit.record(
            conn, "edit", actor, version, from_version=version, diff=diff(before, after.rule_set()), comment=comment
        )
    return after


def delete_draft(conn: psycopg.Connection, version: int, actor: Actor, *, comment: str = "") -> None:
    with conn.transaction():
        _lock_draft(conn, version)
        conn.execute("DELETE FROM pricing_rules WHERE pricing_version = %s", (version,))
        conn.execute("DELETE FROM pricing_rule_sets WHERE pricing_version = %s", (version,))
        audit.record(conn, "delete_draft", actor, version, comment=comment)


def begin_activation(
    conn: psycopg.Connection,
    version: int,
    actor: Actor,
    comment: str,
    *,
    expected: Literal["activate", "revert"] | None = None,
) -> Activation:
    """Check that `version` may become active and record the request; the repricing job does the rest.

    A draft is activated, a retired set reverted to; `expected` refuses the other (the API's activate and
    revert routes say which they mean). Raises NoSuchVersion, CommentRequired, LifecycleError (already
    active, or not what was expected), ActivationInProgress, or InvalidRuleSet with the validation errors.
    """
    if not comment.strip():
        raise CommentRequired("activating or reverting a pricing version needs a comment saying why")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LIFECYCLE_LOCK_KEY,))
        status = _lock(conn, version)
        if status == "active":
            raise LifecycleError(f"pricing version {version} is already active")
        action: Literal["activate", "revert"] = "activate" if status == "draft" else "revert"
        if expected is not None and expected != action:
            done = {"activate": "activated", "revert": "reverted to"}
            raise LifecycleError(
                f"pricing version {version} is {status}: it can only be {done[action]}, not {done[expected]}"
            )
        _refuse_in_progress(conn)
        rules = rule_set(conn, version)
        findings = validate(rules)
        if has_errors(findings):
            raise InvalidRuleSet(version, [finding for finding in findings if finding.severity == "error"])
        active = conn.execute("SELECT pricing_version FROM pricing_rule_sets WHERE status = 'active'").fetchone()
        previous = None if active is None else int(active[0])
        changes = diff(None if previous is None else rule_set(conn, previous), rules)
        activation_id = audit.record(conn, action, actor, version, from_version=previous, diff=changes, comment=comment)
        started = activation_in_progress(conn)
    if started is None or started.activation_id != activation_id:
        raise AssertionError(f"activation {activation_id} was recorded but is not the one in progress")
    return started


def activation_in_progress(conn: psycopg.Connection) -> Activation | None:
    """The activation no job has ended yet, if any."""
    entry = audit.open_activation(conn)
    if entry is None:
        return None
    assert entry.action in ("activate", "revert")
    return Activation(
        activation_id=entry.audit_id,
        action=entry.action,
        pricing_version=entry.pricing_version,
        from_version=entry.from_version,
        actor=entry.actor,
        comment=entry.comment,
        requested_at=entry.recorded_at,
    )


def mark_active(conn: psycopg.Connection, version: int) -> int | None:
    """Make `version` the active set and retire the one it replaces (whose version is returned).

    For the repricing job: at its start, the activation's version; on a cancel's way back, the version
    the activation replaced (its own is then retired, never a draft again: stones may carry its rules).
    No other version, and none without an activation in progress. Idempotent: a version already active is
    left as it is (None), so a replayed step changes nothing.
    """
    with conn.transaction():
        if _lock(conn, version) == "active":
            return None
        started = activation_in_progress(conn)
        if started is None or version not in (started.pricing_version, started.from_version):
            raise LifecycleError(f"no activation in progress involves pricing version {version}")
        active = conn.execute(
            "SELECT pricing_version FROM pricing_rule_sets WHERE status = 'active' FOR UPDATE"
        ).fetchone()
        previous = None if active is None else int(active[0])
        if previous is not None:
            conn.execute(
                "UPDATE pricing_rule_sets SET status = 'retired', retired_at = now() WHERE pricing_version = %s",
                (previous,),
            )
        conn.execute(
            """UPDATE pricing_rule_sets SET status = 'active', activated_at = now(), retired_at = NULL
               WHERE pricing_version = %s""",
            (version,),
        )
    return previous


def _new_version(conn: psycopg.Connection, content: RuleSetContent, actor: Actor, copied_from: int | None) -> int:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LIFECYCLE_LOCK_KEY,))
    # The audit trail remembers deleted drafts, so their numbers are never given again.
    version = one(
        conn.execute(
            """SELECT greatest((SELECT max(pricing_version) FROM pricing_rule_sets),
                               (SELECT max(pricing_version) FROM pricing_audit), 0) + 1"""
        ).fetchone()
    )[0]
    conn.execute(
        "INSERT INTO pricing_rule_sets (pricing_version, created_by, copied_from) VALUES (%s, %s, %s)",
        (version, actor.label, copied_from),
    )
    _write(conn, version, content)
    return int(version)


def _write(conn: psycopg.Connection, version: int, content: RuleSetContent) -> None:
    """Store a draft's note, defaults and rules (its rules deleted beforehand)."""
    defaults: dict[str, Any] = content.defaults.model_dump(include=set(_ADJUSTMENTS))
    conn.execute(
        sql.SQL("UPDATE pricing_rule_sets SET note = %(note)s, {} WHERE pricing_version = %(version)s").format(
            sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(n), sql.Placeholder(n)) for n in _ADJUSTMENTS)
        ),
        {**defaults, "note": content.note, "version": version},
    )
    if not content.rules:
        return
    statement = sql.SQL("INSERT INTO pricing_rules (pricing_version, {}) VALUES (%s, {})").format(
        sql.SQL(", ").join(map(sql.Identifier, _RULE_COLUMNS)),
        sql.SQL(", ").join(sql.Placeholder() * len(_RULE_COLUMNS)),
    )
    with conn.cursor() as cur:
        cur.executemany(statement, [[version, *(getattr(rule, c) for c in _RULE_COLUMNS)] for rule in content.rules])


def _lock(conn: psycopg.Connection, version: int) -> Status:
    row = conn.execute(
        "SELECT status FROM pricing_rule_sets WHERE pricing_version = %s FOR UPDATE", (version,)
    ).fetchone()
    if row is None:
        raise NoSuchVersion(f"no pricing version {version}")
    status: Status = row[0]
    return status


def _lock_draft(conn: psycopg.Connection, version: int) -> int:
    """Lock a draft no activation is using; its revision."""
    status = _lock(conn, version)
    if status != "draft":
        raise NotADraft(f"pricing version {version} is {status}: only a draft changes")
    started = activation_in_progress(conn)
    if started is not None and started.pricing_version == version:
        raise ActivationInProgress(f"pricing version {version} is being activated (activation {started.activation_id})")
    return int(
        one(conn.execute("SELECT revision FROM pricing_rule_sets WHERE pricing_version = %s", (version,)).fetchone())[0]
    )


def _refuse_in_progress(conn: psycopg.Connection) -> None:
    started = activation_in_progress(conn)
    if started is not None:
        raise ActivationInProgress(
            f"activation {started.activation_id} of pricing version {started.pricing_version} is still in progress"
        )
