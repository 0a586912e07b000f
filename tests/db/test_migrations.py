"""Migrations: applied once each, idempotent, safe when processes start together, drift refused."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from shared.db.migrate import Migration, MigrationError, discover, migrate

# The catalogue of what a migration creates, to compare before and after a second run.
SCHEMA_SNAPSHOT = """
SELECT table_name, column_name, data_type, is_nullable, column_default
FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT tablename, indexname, indexdef, '', '' FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), '', ''
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
ORDER BY 1, 2, 3
"""


def _snapshot(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(SCHEMA_SNAPSHOT).fetchall()


def test_migrations_are_discovered_in_order() -> None:
    versions = [m.version for m in discover()]
    assert versions == sorted(versions)
    assert versions[0] == 1


def test_second_run_changes_nothing(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url) as conn:
        first = migrate(conn)
    before = _snapshot(empty_database_url)
    with psycopg.connect(empty_database_url) as conn:
        second = migrate(conn)
    assert first == [m.version for m in discover()]
    assert second == []
    assert _snapshot(empty_database_url) == before
    assert len(before) > 100  # the snapshot really sees the schema


def _migrate_in_process(url: str, results) -> None:
    with psycopg.connect(url) as conn:
        results.put(migrate(conn))


def test_concurrent_processes_migrate_without_error(empty_database_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_migrate_in_process, args=(empty_database_url, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    applied = [results.get(timeout=5) for _ in workers]
    # Exactly one process applied everything; the others found nothing left to do.
    assert sorted(applied, key=len) == [[], [], [], [m.version for m in discover()]]
    with psycopg.connect(empty_database_url) as conn:
        rows = conn.execute("SELECT version, count(*) FROM schema_migrations GROUP BY version").fetchall()
    assert all(count == 1 for _, count in rows)


def test_edited_migration_is_refused(empty_database_url: str) -> None:
    original = discover()
    with psycopg.connect(empty_database_url) as conn:
        migrate(conn)
        edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in original]
        with pytest.raises(MigrationError, match="edited after it was applied"):
            migrate(conn, edited)


def test_unknown_applied_migration_is_refused(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url) as conn:
        migrate(conn)
        extra = [*discover(), Migration(9999, "from_the_future", "SELECT 1")]
        migrate(conn, extra)
        with pytest.raises(MigrationError, match="does not know"):
            migrate(conn)


def test_failed_migration_leaves_nothing_behind(empty_database_url: str) -> None:
    broken = [*discover(), Migration(9998, "broken", "CREATE TABLE half_done (x int); SELECT 1/0;")]
    with psycopg.connect(empty_database_url) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            migrate(conn, broken)
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM schema_migrations WHERE version = 9998").fetchone() == (0,)


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        (
            "INSERT INTO runs (run_id, feed, kind, status, trigger) VALUES (gen_random_uuid(), 'f', 'full', %s, 'cli')",
            ("exploded",),
        ),
        ("INSERT INTO runs (run_id, feed, kind, trigger) VALUES (gen_random_uuid(), 'f', %s, 'cli')", ("partial",)),
        ("INSERT INTO pricing_rule_sets (pricing_version, status) VALUES (1, %s)", ("maybe",)),
        ("INSERT INTO runs (run_id, feed, kind, trigger) VALUES (gen_random_uuid(), 'f', 'full', %s)", ("cron",)),
    ],
)
def test_status_columns_are_constrained(database_url: str, statement: str, params: tuple[str]) -> None:
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(statement, params)


def test_every_status_column_has_a_check(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        columns = conn.execute(
            """SELECT table_name, column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND column_name IN ('status', 'kind', 'availability', 'trigger')"""
        ).fetchall()
        checks = " ".join(
            row[0]
            for row in conn.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'c' "
                "AND connamespace = 'public'::regnamespace"
            )
        )
    assert len(columns) >= 6
    for table, column in columns:
        assert f"{column} = ANY" in checks or f"({column} = " in checks, f"{table}.{column} has no CHECK"


def test_one_active_run_per_feed(database_url: str) -> None:
    insert = (
        "INSERT INTO runs (run_id, feed, kind, status, trigger) VALUES (gen_random_uuid(), %s, 'full', %s, 'timer')"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(insert, ("nivoda-natural", "fetching"))
        conn.execute(insert, ("nivoda-labgrown", "fetching"))  # another feed may run meanwhile
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, ("nivoda-natural", "pending"))
        conn.execute(insert, ("nivoda-natural", "succeeded"))  # finished runs do not count
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (3,)
        assert datetime.now(UTC)  # clocks are UTC-aware


def test_renaming_attempt_no_keeps_the_recorded_attempts(empty_database_url: str) -> None:
    before_rename = [m for m in discover() if m.version < 12]
    with psycopg.connect(empty_database_url) as conn:
        migrate(conn, before_rename)
        conn.execute(
            """WITH event AS (INSERT INTO notification_events (event_kind, subject) VALUES ('run_failed', 'r')
                              RETURNING event_id),
                    delivery AS (INSERT INTO notification_deliveries (event_id, target) SELECT event_id, 'ops'
                                 FROM event RETURNING delivery_id)
               INSERT INTO notification_attempts (delivery_id, attempt_no, outcome) SELECT delivery_id, 2, 'retry'
               FROM delivery"""
        )
        assert migrate(conn) == [m.version for m in discover() if m.version >= 12]
        assert conn.execute("SELECT attempt, outcome FROM notification_attempts").fetchall() == [(2, "retry")]
        with pytest.raises(psycopg.errors.CheckViolation, match="notification_attempts_attempt_check"):
            conn.execute("UPDATE notification_attempts SET attempt = 0")
