"""The audit trail: append-only in the database, untouched by retention, listed with filters; and the
rule-level diff it records."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from shared.pricing import audit, sets
from shared.pricing.audit import Actor, AuditQuery, Outcome
from shared.pricing.diff import diff
from shared.pricing.rules import PriceAdjustments, PricingRule, RuleSet
from shared.retention.rules import RULES

ALICE, BOB = Actor.operator("alice"), Actor.api_key("acme", "ck0123")


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def test_an_audit_row_is_never_updated_deleted_or_truncated(conn: psycopg.Connection) -> None:
    sets.create(conn, ALICE)
    for statement in (
        "UPDATE pricing_audit SET comment = 'rewritten'",
        "DELETE FROM pricing_audit",
        "TRUNCATE pricing_audit",
    ):
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="append-only"):
            conn.execute(statement)
    assert len(audit.entries(conn, AuditQuery())) == 1


def test_retention_has_no_rule_for_the_audit_trail() -> None:
    assert "pricing_audit" not in {rule.table for rule in RULES}
    assert all("pricing_audit" not in rule.where for rule in RULES)


def test_the_database_asks_a_comment_of_activate_and_revert(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        audit.record(conn, "activate", ALICE, 1, comment=" ")
    with pytest.raises(psycopg.errors.CheckViolation):  # a job's row names the activation it ends
        audit.record(conn, "job_finished", ALICE, 1)


def test_entries_filter_by_version_action_actor_and_time(conn: psycopg.Connection) -> None:
    first = sets.create(conn, ALICE).pricing_version
    second = sets.copy(conn, 1, BOB).pricing_version
    sets.delete_draft(conn, first, BOB)

    def selected(**filters: object) -> list[tuple[str, int]]:
        return [(e.action, e.pricing_version) for e in audit.entries(conn, AuditQuery.model_validate(filters))]

    assert selected() == [("delete_draft", first), ("copy", second), ("create", first)]
    assert selected(version=first) == [("delete_draft", first), ("create", first)]
    assert selected(action="copy") == [("copy", second)]
    assert selected(actor="acme") == [("delete_draft", first), ("copy", second)]
    assert selected(limit=1) == [("delete_draft", first)]
    newest = audit.entries(conn, AuditQuery(limit=1))[0]
    assert selected(before=newest.audit_id) == [("copy", second), ("create", first)]
    assert newest.recorded_at.tzinfo is not None
    assert selected(since=newest.recorded_at) == [("delete_draft", first)]
    assert selected(until=datetime.now(UTC) - timedelta(hours=1)) == []
    assert audit.entries(conn, AuditQuery(action="copy"))[0].actor == BOB


def test_an_outcome_ends_only_an_activation(conn: psycopg.Connection) -> None:
    created = audit.record(conn, "create", ALICE, 5)
    with pytest.raises(LookupError):
        audit.record_outcome(conn, created, "job_failed", None)
    activation = audit.record(conn, "activate", ALICE, 5, from_version=1, comment="why")
    ended = audit.record_outcome(
        conn, activation, "job_cancelled", Outcome(stones_repriced=3, value_delta_cents=7, duration_ms=9),
        actor=BOB, details={"instance_id": "x"},
    )  # fmt: skip
    (entry,) = audit.entries(conn, AuditQuery(action="job_cancelled"))
    assert (entry.audit_id, entry.activation_id, entry.pricing_version, entry.from_version) == (ended, activation, 5, 1)
    assert (entry.actor, entry.details, entry.outcome) == (BOB, {"instance_id": "x"}, Outcome(
        stones_repriced=3, value_delta_cents=7, duration_ms=9))  # fmt: skip


# --- the diff


def rule(priority: int, name: str, **fields: object) -> PricingRule:
    return PricingRule.model_validate({"priority": priority, "name": name, **fields})


def test_rules_pair_by_unique_name_then_by_priority() -> None:
    old = RuleSet(1, [rule(10, "lab", markup_percent=60), rule(20, "same", shapes=["ROUND", "OVAL"]),
                      rule(30, "dup"), rule(31, "dup"), rule(40, "gone")])  # fmt: skip
    new = RuleSet(2, [rule(15, "lab", markup_percent=Decimal("60.000")), rule(20, "same", shapes=["OVAL", "ROUND"]),
                      rule(30, "dup", markup_cents=5), rule(31, "dup"), rule(50, "new")])  # fmt: skip
    found = diff(old, new)
    assert [(c.name, c.priority, [(f.field, f.old, f.new) for f in c.changes]) for c in found.changed] == [
        ("lab", 15, [("priority", 10, 15)]),
        ("dup", 30, [("markup_cents", 0, 5)]),
    ]
    assert [r.name for r in found.removed] == ["gone"]
    assert [r.name for r in found.added] == ["new"]


def test_a_renamed_rule_at_its_priority_is_a_change_and_defaults_are_compared() -> None:
    old = RuleSet(1, [rule(10, "old name")], PriceAdjustments(floor_cents=0))
    new = RuleSet(2, [rule(10, "new name")], PriceAdjustments())
    found = diff(old, new)
    assert [[f.field for f in c.changes] for c in found.changed] == [["name"]]
    assert [(f.field, f.old, f.new) for f in found.defaults] == [("floor_cents", 0, None)]
    assert diff(old, old).is_empty
    assert [r.name for r in diff(None, new).added] == ["new name"]
