"""The rule-set lifecycle against PostgreSQL: drafts change, active and retired sets never do (in the module
and in the database), activation is checked, single and recorded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from shared.pricing import audit, sets
from shared.pricing.audit import Actor, AuditQuery, Outcome
from shared.pricing.rules import PriceAdjustments, PricingRule

ALICE = Actor.operator("alice")
KEY = Actor.api_key("acme", "ck0123")
Refused = psycopg.errors.ObjectNotInPrerequisiteState


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def content(markup: int = 20, **fields: Any) -> sets.RuleSetContent:
    rules = [
        PricingRule(priority=10, name="natural", stone_type="natural", markup_percent=Decimal(markup)),
        PricingRule(priority=1000, name="everything else", markup_percent=Decimal(30)),
    ]
    return sets.RuleSetContent(**{"note": "test", "rules": rules, **fields})


def actions(conn: psycopg.Connection, version: int) -> list[str]:
    return [entry.action for entry in reversed(audit.entries(conn, AuditQuery(version=version)))]


def test_a_draft_is_created_with_the_next_number_and_recorded(conn: psycopg.Connection) -> None:
    draft = sets.create(conn, KEY, content())
    assert (draft.pricing_version, draft.status, draft.created_by, draft.revision) == (
        2,
        "draft",
        "api_key:acme:ck0123",
        1,
    )
    assert [rule.name for rule in draft.rules] == ["natural", "everything else"]
    (entry,) = audit.entries(conn, AuditQuery(version=2))
    assert (entry.action, entry.actor, entry.diff and len(entry.diff.added)) == ("create", KEY, 2)
    assert sets.create(conn, ALICE).rule_count == 0  # from scratch: empty
    assert [s.pricing_version for s in sets.list_sets(conn)] == [3, 2, 1]
    assert [s.pricing_version for s in sets.list_sets(conn, "active")] == [1]


def test_a_copy_has_the_rules_and_defaults_of_its_source(conn: psycopg.Connection) -> None:
    copied = sets.copy(conn, 1, ALICE)
    original = sets.get(conn, 1)
    assert (copied.pricing_version, copied.copied_from, copied.status) == (2, 1, "draft")
    strip = {"rule_id"}
    assert [r.model_dump(exclude=strip) for r in copied.rules] == [r.model_dump(exclude=strip) for r in original.rules]
    assert {r.rule_id for r in copied.rules}.isdisjoint(r.rule_id for r in original.rules)
    assert actions(conn, 2) == ["copy"]
    with pytest.raises(sets.NoSuchVersion):
        sets.copy(conn, 99, ALICE)


def test_an_edit_replaces_a_draft_and_records_the_rule_diff(conn: psycopg.Connection) -> None:
    draft = sets.create(conn, ALICE, content())
    edited = sets.edit(
        conn, draft.pricing_version, content(markup=25, defaults=PriceAdjustments(rounding="dollar")), ALICE,
        expected_revision=1, comment="natural up",
    )  # fmt: skip
    assert (edited.revision, edited.defaults.rounding) == (2, "dollar")
    assert edited.rules[0].markup_percent == 25
    entry = audit.entries(conn, AuditQuery(version=draft.pricing_version, action="edit"))[0]
    assert entry.diff is not None
    assert [(c.name, [f.field for f in c.changes]) for c in entry.diff.changed] == [("natural", ["markup_percent"])]
    assert [f.field for f in entry.diff.defaults] == ["rounding"]
    assert entry.comment == "natural up"
    with pytest.raises(sets.RevisionConflict):
        sets.edit(conn, draft.pricing_version, content(), ALICE, expected_revision=1)


def test_only_a_draft_is_edited_or_deleted(conn: psycopg.Connection) -> None:
    with pytest.raises(sets.NotADraft):
        sets.edit(conn, 1, content(), ALICE)
    with pytest.raises(sets.NotADraft):
        sets.delete_draft(conn, 1, ALICE)
    with pytest.raises(sets.NoSuchVersion):
        sets.edit(conn, 42, content(), ALICE)


def test_a_deleted_drafts_number_is_never_given_again(conn: psycopg.Connection) -> None:
    draft = sets.create(conn, ALICE, content())
    sets.delete_draft(conn, draft.pricing_version, ALICE, comment="wrong")
    with pytest.raises(sets.NoSuchVersion):
        sets.get(conn, draft.pricing_version)
    assert actions(conn, draft.pricing_version) == ["create", "delete_draft"]
    assert sets.create(conn, ALICE).pricing_version == draft.pricing_version + 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE pricing_rules SET markup_percent = 99 WHERE pricing_version = 1",
        "DELETE FROM pricing_rules WHERE pricing_version = 1",
        "INSERT INTO pricing_rules (pricing_version, priority, name) VALUES (1, 5, 'sneaked in')",
        "UPDATE pricing_rule_sets SET note = 'changed' WHERE pricing_version = 1",
        "UPDATE pricing_rule_sets SET floor_cents = 0 WHERE pricing_version = 1",
        "UPDATE pricing_rule_sets SET status = 'draft' WHERE pricing_version = 1",
        "DELETE FROM pricing_rule_sets WHERE pricing_version = 1",
        "INSERT INTO pricing_rule_sets (pricing_version, status) VALUES (7, 'retired')",
    ],
)
def test_the_database_refuses_changing_an_active_set(conn: psycopg.Connection, statement: str) -> None:
    with pytest.raises(Refused):
        conn.execute(statement)


def test_the_database_refuses_changing_a_retired_set_but_lets_it_become_active(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO pricing_rule_sets (pricing_version) VALUES (2)")
    conn.execute("INSERT INTO pricing_rules (pricing_version, priority, name) VALUES (2, 1, 'all')")
    conn.execute("UPDATE pricing_rule_sets SET status = 'retired' WHERE pricing_version = 1")
    conn.execute("UPDATE pricing_rule_sets SET status = 'active' WHERE pricing_version = 2")
    for statement in (
        "UPDATE pricing_rules SET name = 'x' WHERE pricing_version = 1",
        "UPDATE pricing_rules SET pricing_version = 1 WHERE pricing_version = 2",
        "UPDATE pricing_rule_sets SET status = 'draft' WHERE pricing_version = 1",
        "UPDATE pricing_rule_sets SET pricing_version = 9 WHERE pricing_version = 1",
        "DELETE FROM pricing_rule_sets WHERE pricing_version = 1",
    ):
        with pytest.raises(Refused):
            conn.execute(statement)
    conn.execute("UPDATE pricing_rule_sets SET status = 'retired' WHERE pricing_version = 2")
    conn.execute("UPDATE pricing_rule_sets SET status = 'active', activated_at = now() WHERE pricing_version = 1")


def test_activation_needs_a_comment_and_a_valid_set(conn: psycopg.Connection) -> None:
    empty = sets.create(conn, ALICE)
    with pytest.raises(sets.CommentRequired):
        sets.begin_activation(conn, empty.pricing_version, ALICE, "  ")
    with pytest.raises(sets.InvalidRuleSet) as refused:
        sets.begin_activation(conn, empty.pricing_version, ALICE, "go")
    assert {f.code for f in refused.value.findings} == {"unpriced_stones"}
    with pytest.raises(sets.LifecycleError, match="already active"):
        sets.begin_activation(conn, 1, ALICE, "again")
    with pytest.raises(sets.LifecycleError, match="can only be activated, not reverted"):
        sets.begin_activation(conn, sets.copy(conn, 1, ALICE).pricing_version, ALICE, "back", expected="revert")
    assert sets.activation_in_progress(conn) is None


def test_activation_then_revert_through_the_jobs_steps(conn: psycopg.Connection) -> None:
    draft = sets.create(conn, ALICE, content())
    version = draft.pricing_version
    activation = sets.begin_activation(conn, version, KEY, "spring prices")
    assert (activation.action, activation.pricing_version, activation.from_version) == ("activate", version, 1)
    assert sets.activation_in_progress(conn) == activation
    # Meanwhile: the draft is frozen, no second activation begins, no other version can be marked active.
    with pytest.raises(sets.ActivationInProgress):
        sets.edit(conn, version, content(markup=50), ALICE)
    with pytest.raises(sets.ActivationInProgress):
        sets.delete_draft(conn, version, ALICE)
    other = sets.create(conn, ALICE, content())
    with pytest.raises(sets.ActivationInProgress):
        sets.begin_activation(conn, other.pricing_version, ALICE, "me too")
    with pytest.raises(sets.LifecycleError):
        sets.mark_active(conn, other.pricing_version)
    # The job starts: active now, the old one retired; a replayed step changes nothing.
    assert sets.mark_active(conn, version) == 1
    assert sets.mark_active(conn, version) is None
    assert {s.pricing_version: s.status for s in sets.list_sets(conn)} == {
        version: "active", 1: "retired", other.pricing_version: "draft"
    }  # fmt: skip
    outcome = Outcome(stones_repriced=10, value_delta_cents=-500, duration_ms=1200)
    ended = audit.record_outcome(conn, activation.activation_id, "job_finished", outcome)
    assert audit.record_outcome(conn, activation.activation_id, "job_finished", outcome) == ended
    assert sets.activation_in_progress(conn) is None
    # Revert: version 1 is retired, so activating it again is a revert.
    revert = sets.begin_activation(conn, 1, ALICE, "back")
    assert (revert.action, revert.from_version) == ("revert", version)
    assert revert.activation_id != activation.activation_id
    assert sets.mark_active(conn, 1) == version
    assert sets.get(conn, version).status == "retired"
    assert actions(conn, version) == ["create", "activate", "job_finished"]


def test_a_cancelled_activation_goes_back_to_the_set_it_replaced(conn: psycopg.Connection) -> None:
    version = sets.create(conn, ALICE, content()).pricing_version
    activation = sets.begin_activation(conn, version, ALICE, "try")
    assert sets.mark_active(conn, version) == 1
    assert sets.mark_active(conn, 1) == version  # the way back
    assert {s.pricing_version: s.status for s in sets.list_sets(conn)} == {version: "retired", 1: "active"}
    audit.record_outcome(conn, activation.activation_id, "job_cancelled", None, actor=KEY)
    with pytest.raises(sets.LifecycleError, match="no activation in progress"):
        sets.mark_active(conn, version)


def test_two_activations_at_once_one_begins(database_url: str, conn: psycopg.Connection) -> None:
    drafts = [sets.create(conn, ALICE, content()).pricing_version for _ in range(2)]
    barrier, results = threading.Barrier(2), list[int | None]()

    def activate(version: int) -> None:
        with psycopg.connect(database_url, autocommit=True) as own:
            barrier.wait()
            try:
                results.append(sets.begin_activation(own, version, ALICE, "race").pricing_version)
            except sets.ActivationInProgress:
                results.append(None)

    threads = [threading.Thread(target=activate, args=(version,)) for version in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 2
    assert results.count(None) == 1
    assert len(audit.entries(conn, AuditQuery(action="activate"))) == 1


def test_a_set_does_not_leave_draft_while_a_rule_is_being_written_into_it(database_url: str) -> None:
    """The rules' trigger holds the set's row: a status change waits for the rule's transaction, then the
    rule is part of what became active (and no rule can be added after)."""
    with psycopg.connect(database_url) as writer, psycopg.connect(database_url, autocommit=True) as other:
        draft = sets.create(writer, ALICE, content())
        writer.commit()
        writer.execute(
            "INSERT INTO pricing_rules (pricing_version, priority, name) VALUES (%s, 5, 'late')",
            (draft.pricing_version,),
        )
        other.execute("SET lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute(
                "UPDATE pricing_rule_sets SET status = 'active' WHERE pricing_version = %s", (draft.pricing_version,)
            )


def test_times_are_utc_whatever_the_sessions_time_zone(conn: psycopg.Connection) -> None:
    conn.execute("SET TimeZone = 'America/New_York'")
    created = sets.create(conn, ALICE)
    (entry,) = audit.entries(conn, AuditQuery(version=created.pricing_version))
    assert created.created_at.utcoffset() == entry.recorded_at.utcoffset() == timedelta(0)
