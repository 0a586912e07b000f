"""Retention: rows on both sides of every cutoff, exactly those past it go, in bounded batches; a dry run
deletes nothing; what a sync still needs (active runs, listed stones' raw rows, the latest runs) stays."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from catalogue_rows import insert_plain

from shared.retention.rules import KINDS
from shared.retention.sweep import sweep

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FEED = "nivoda-natural"


def days(n: float) -> datetime:
    return NOW - timedelta(days=n)


@pytest.fixture
def retention_settings(settings):
    def make(**overrides):
        return settings.model_copy(
            update={
                "retention_batch_size": 1000,
                "retention_time_budget_seconds": 60,
                "retention_raw_days": 30,
                "retention_run_days": 90,
                "retention_price_history_days": 365,
                "retention_delisted_days": 180,
                "retention_notification_days": 30,
                **overrides,
            }
        )

    return make


# --- seeding


def run(conn, status: str, started: datetime, *, kind: str = "full", feed: str = FEED) -> uuid.UUID:
    run_id = uuid.uuid4()
    finished = None if status in ("pending", "planning", "fetching", "consolidating", "finalizing") else started
    conn.execute(
        """INSERT INTO runs (run_id, feed, kind, status, trigger, started_at, finished_at, updated_from)
           VALUES (%s, %s, %s, %s, 'timer', %s, %s, %s)""",
        (run_id, feed, kind, status, started, finished, started if kind == "incremental" else None),
    )
    conn.execute(
        "INSERT INTO partitions (run_id, partition_no, dpc_from, expected_count) VALUES (%s, 0, 0, 1), (%s, 1, 10, 1)",
        (run_id, run_id),
    )
    return run_id


def raw(conn, stone_id: str, last_seen: uuid.UUID, fetched: datetime, *, pending: bool = False) -> None:
    digest = hashlib.sha256(stone_id.encode()).digest()
    conn.execute(
        """INSERT INTO raw_stones (feed, stone_id, offer_id, payload, payload_hash, first_seen_run_id,
                                   last_seen_run_id, fetched_at, changed_at)
           VALUES (%s, %s, %s, '{}', %s, %s, %s, %s, %s)""",
        (FEED, stone_id, f"o-{stone_id}", digest, last_seen, last_seen, fetched, fetched),
    )
    if pending:
        conn.execute(
            "INSERT INTO raw_pending (feed, stone_id, payload_hash) VALUES (%s, %s, %s)", (FEED, stone_id, digest)
        )


def diamond(conn, stone_id: str, delisted: datetime | None) -> uuid.UUID:
    return insert_plain(conn, FEED, stone_id, last_seen_run_id=uuid.uuid4(), delisted_at=delisted)


def price_change(conn, diamond_id: uuid.UUID, changed: datetime) -> int:
    price_history_id: int = conn.execute(
        """INSERT INTO price_history (diamond_id, run_id, new_cost_cents, new_price_cents, pricing_version, changed_at)
           VALUES (%s, %s, 100000, 120000, 1, %s) RETURNING price_history_id""",
        (diamond_id, uuid.uuid4(), changed),
    ).fetchone()[0]
    return price_history_id


def feed_reject(conn, run_id: uuid.UUID, rejected: datetime) -> int:
    reject_id: int = conn.execute(
        """INSERT INTO feed_rejects (run_id, partition_no, page_offset, item_index, reason, payload, rejected_at)
           VALUES (%s, 0, 0, (SELECT count(*) FROM feed_rejects), 'no carats', '{}', %s) RETURNING reject_id""",
        (run_id, rejected),
    ).fetchone()[0]
    return reject_id


def dead_letter(conn, run_id: uuid.UUID, status: str) -> None:
    conn.execute(
        """INSERT INTO dead_letters (run_id, kind, partition_no, input, error, attempts, status)
           VALUES (%s, 'partition', 0, '{}', 'kept failing', 4, %s)""",
        (run_id, status),
    )


def event(conn, occurred: datetime, *deliveries: str, fanned: bool = True) -> int:
    event_id: int = conn.execute(
        """INSERT INTO notification_events (event_kind, subject, occurred_at, fanned_out_at)
           VALUES ('run_succeeded', 'r', %s, %s) RETURNING event_id""",
        (occurred, occurred if fanned else None),
    ).fetchone()[0]
    for n, status in enumerate(deliveries):
        delivery_id = conn.execute(
            """INSERT INTO notification_deliveries (event_id, target, status, attempts, delivered_at)
               VALUES (%s, %s, %s, 1, %s) RETURNING delivery_id""",
            (event_id, f"t{n}", status, occurred if status == "delivered" else None),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO notification_attempts (delivery_id, attempt, started_at) VALUES (%s, 1, %s)",
            (delivery_id, occurred),
        )
    return event_id


def rows(conn, table: str, key: str) -> set[Any]:
    return {row[0] for row in conn.execute(f"SELECT {key} FROM {table}")}  # noqa: S608 - test's own names


def counts(conn) -> dict[str, int]:
    tables = (*KINDS, "partitions", "dead_letters", "raw_pending", "notification_deliveries", "notification_attempts")
    return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables}  # noqa: S608


@pytest.fixture
def scenario(database_url: str) -> dict[str, Any]:
    """Rows on both sides of every cutoff; returns what must go and what must stay, per table."""
    with psycopg.connect(database_url) as conn:
        old = run(conn, "succeeded", days(100))  # still seen by kept raw rows: stays
        ancient = run(conn, "failed", days(200))  # goes, partitions and rejects with it
        open_letter = run(conn, "failed", days(150))  # an operator may still replay it: stays
        replayed = run(conn, "partially_succeeded", days(150))  # its dead letter is resolved: goes
        stuck = run(conn, "fetching", days(200))  # active, however old: stays
        full = run(conn, "succeeded", days(40))  # the feed's latest full run: stays
        recent = run(conn, "succeeded", days(1), kind="incremental")  # the latest successful run
        cancelled = run(conn, "cancelled", days(10))
        conn.execute(
            "INSERT INTO feed_state (feed, watermark, last_full_run_id) VALUES (%s, %s, %s)", (FEED, NOW, full)
        )
        dead_letter(conn, open_letter, "open")
        dead_letter(conn, replayed, "replayed")

        raw(conn, "s-gone", old, days(100))  # not seen for 100 days, no diamond: goes
        raw(conn, "s-delisted", old, days(100))  # its diamond is delisted: goes
        raw(conn, "s-listed", old, days(100))  # its diamond is listed: the next full run needs it
        raw(conn, "s-pending", old, days(100), pending=True)  # queued for consolidation
        raw(conn, "s-full", full, days(40))  # seen by the latest full run
        raw(conn, "s-recent", recent, days(1))
        raw(conn, "s-back", recent, days(1))  # a delisted stone that came back unchanged
        raw(conn, "s-stuck", stuck, days(200))  # seen by an unfinished run

        conn.execute(
            "INSERT INTO mapping_rejects (feed, stone_id, payload_hash, reason) VALUES (%s, 's-nowhere', '\\x00', 'x'),"
            " (%s, 's-full', '\\x00', 'no shape')",
            (FEED, FEED),
        )

        sold = diamond(conn, "s-sold", days(200))  # delisted long ago, raw row gone: goes
        back = diamond(conn, "s-back", days(200))  # delisted long ago but its raw row is current: stays
        delisted = diamond(conn, "s-delisted", days(60))
        listed = diamond(conn, "s-listed", None)
        with_sold = price_change(conn, sold, days(300))  # goes with its diamond, not by the price rule
        old_prices = [price_change(conn, listed, days(400)), price_change(conn, listed, days(380))]
        price_change(conn, listed, days(10))
        price_change(conn, delisted, days(500))  # old, but the diamond's latest: stays
        old_prices.append(price_change(conn, back, days(400)))
        price_change(conn, back, days(390))

        old_rejects = [feed_reject(conn, full, days(40)), feed_reject(conn, ancient, days(200))]
        feed_reject(conn, recent, days(1))

        conn.execute(
            "INSERT INTO api_nonces (key_id, nonce, expires_at) VALUES ('k', 'old', %s), ('k', 'new', %s)",
            (NOW - timedelta(seconds=1), NOW + timedelta(minutes=5)),
        )
        conn.execute(
            "INSERT INTO rate_budgets (budget, next_slot_at) VALUES ('idle', %s), ('busy', %s), ('ahead', %s),"
            " ('fresh', '-infinity')",
            (NOW - timedelta(hours=2), NOW - timedelta(minutes=10), NOW + timedelta(seconds=1)),
        )

        done = event(conn, days(40), "delivered", "given_up")
        event(conn, days(40), "failed")  # still retrying
        event(conn, days(40), fanned=False)  # never fanned out yet
        event(conn, days(1), "delivered")

    return {
        "raw_stones": {"s-gone", "s-delisted"},
        "mapping_rejects": {"s-nowhere"},
        "diamonds": {sold},
        "price_history": set(old_prices),
        "price_history_cascaded": {with_sold},
        "feed_rejects": set(old_rejects),
        "runs": {ancient, replayed},
        "api_nonces": {"old"},
        "rate_budgets": {"idle", "fresh"},
        "notification_events": {done},
        "kept_runs": {old, open_letter, stuck, full, recent, cancelled},
    }


KEYS = {
    "raw_stones": "stone_id",
    "mapping_rejects": "stone_id",
    "diamonds": "diamond_id",
    "price_history": "price_history_id",
    "feed_rejects": "reject_id",
    "runs": "run_id",
    "api_nonces": "nonce",
    "rate_budgets": "budget",
    "notification_events": "event_id",
}


def test_exactly_the_rows_past_retention_go(scenario, pool, database_url, retention_settings) -> None:
    with psycopg.connect(database_url) as conn:
        before = {table: rows(conn, table, key) for table, key in KEYS.items()}
        before_counts = counts(conn)
    report = sweep(pool, retention_settings(), now=NOW)
    assert report.complete
    with psycopg.connect(database_url) as conn:
        after = {table: rows(conn, table, key) for table, key in KEYS.items()}
        after_counts = counts(conn)
    for table in KEYS:
        assert before[table] - after[table] == scenario[table] | scenario.get(f"{table}_cascaded", set()), table
        assert report.deleted[table] == len(scenario[table]), table
    assert after["runs"] == scenario["kept_runs"]
    # What went with its parent: the runs' partitions and resolved dead letter, the sold diamond's
    # price history, the event's two deliveries and their attempts.
    assert before_counts["partitions"] - after_counts["partitions"] == 4
    assert before_counts["dead_letters"] - after_counts["dead_letters"] == 1
    assert before_counts["notification_deliveries"] - after_counts["notification_deliveries"] == 2
    assert before_counts["notification_attempts"] - after_counts["notification_attempts"] == 2
    assert after_counts["raw_pending"] == before_counts["raw_pending"] == 1

    again = sweep(pool, retention_settings(), now=NOW)
    assert sum(again.deleted.values()) == 0


def test_dry_run_deletes_nothing_and_counts_what_would_go(scenario, pool, database_url, retention_settings) -> None:
    with psycopg.connect(database_url) as conn:
        before = counts(conn)
    report = sweep(pool, retention_settings(), now=NOW, dry_run=True)
    with psycopg.connect(database_url) as conn:
        assert counts(conn) == before
    assert report.dry_run
    assert report.deleted == {table: len(scenario[table]) for table in KEYS}


def test_batches_are_bounded(database_url, pool, retention_settings) -> None:
    with psycopg.connect(database_url) as conn:
        for n in range(10):
            conn.execute("INSERT INTO api_nonces (key_id, nonce, expires_at) VALUES ('k', %s, %s)", (f"n{n}", days(1)))
    report = sweep(pool, retention_settings(retention_batch_size=3), now=NOW)
    assert (report.deleted["api_nonces"], report.batches["api_nonces"]) == (10, 4)
    assert report.batches["runs"] == 0


def test_a_spent_time_budget_stops_the_sweep_and_says_so(scenario, pool, database_url, retention_settings) -> None:
    with psycopg.connect(database_url) as conn:
        before = counts(conn)
    report = sweep(pool, retention_settings(retention_time_budget_seconds=1e-9), now=NOW)
    assert not report.complete
    with psycopg.connect(database_url) as conn:
        assert counts(conn) == before


def test_an_active_run_is_never_deleted(database_url, pool, retention_settings) -> None:
    with psycopg.connect(database_url) as conn:
        active = {
            status: run(conn, status, days(1000), feed=f"feed-{status}")
            for status in ("pending", "planning", "fetching", "consolidating", "finalizing")
        }
        for status, run_id in active.items():
            raw_feed_row = f"{status}-stone"
            conn.execute(
                """INSERT INTO raw_stones (feed, stone_id, offer_id, payload, payload_hash, first_seen_run_id,
                                           last_seen_run_id, fetched_at)
                   VALUES (%s, %s, 'o', '{}', %s, %s, %s, %s)""",
                (f"feed-{status}", raw_feed_row, hashlib.sha256(b"x").digest(), run_id, run_id, days(1000)),
            )
    report = sweep(pool, retention_settings(retention_run_days=1, retention_raw_days=1), now=NOW)
    assert (report.deleted["runs"], report.deleted["raw_stones"]) == (0, 0)
    with psycopg.connect(database_url) as conn:
        assert rows(conn, "runs", "run_id") == set(active.values())


def test_a_raw_row_that_goes_takes_its_reject_and_delisted_diamond_in_the_same_sweep(
    database_url, pool, retention_settings
) -> None:
    with psycopg.connect(database_url) as conn:
        old = run(conn, "succeeded", days(400))
        run(conn, "succeeded", days(1))
        raw(conn, "s-sold", old, days(400))
        diamond(conn, "s-sold", days(300))
        conn.execute(
            "INSERT INTO mapping_rejects (feed, stone_id, payload_hash, reason) VALUES (%s, 's-sold', '\\x00', 'x')",
            (FEED,),
        )
    report = sweep(pool, retention_settings(), now=NOW)
    assert {kind: report.deleted[kind] for kind in ("raw_stones", "mapping_rejects", "diamonds", "runs")} == {
        "raw_stones": 1,
        "mapping_rejects": 1,
        "diamonds": 1,
        "runs": 1,  # no raw row points to it any more
    }


def test_cli_dry_run_prints_counts_per_kind(scenario, database_url, tmp_path) -> None:
    env = {
        **os.environ,
        "CARATFLOW_LOCAL_SETTINGS": str(tmp_path / "none.json"),
        "DATABASE_URL": database_url,
    }
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "retention", "run", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line and not line.startswith("(")}
    assert set(KINDS) <= set(lines)
    assert "would delete" in lines["api_nonces"]
    assert "orchestration_history" in lines
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM api_nonces").fetchone() == (2,)


def test_the_retention_timer_sweeps_then_purges_finished_orchestration_history(
    database_url, pool, settings, monkeypatch
) -> None:
    import asyncio
    from types import SimpleNamespace

    import azure.durable_functions as df

    from activities import deps
    from triggers.maintenance import run_retention

    monkeypatch.setattr(deps, "_current", None)  # restored after the test
    deps.use(settings, pool)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO api_nonces (key_id, nonce, expires_at) VALUES ('k', 'n', now() - interval '1 s')")

    class Client:
        """Stands in for the durable client: the purge's contract is what it is called with."""

        calls: list[dict[str, Any]] = []

        async def purge_instance_history_by(self, **kwargs):
            self.calls.append(kwargs)
            return SimpleNamespace(instances_deleted=3)

    started = datetime.now(UTC)
    asyncio.run(run_retention(Client()))
    [call] = Client.calls
    assert call["created_time_from"] == datetime(1970, 1, 1, tzinfo=UTC)
    cutoff = started - timedelta(days=settings.retention_orchestration_days)
    assert abs(call["created_time_to"] - cutoff) < timedelta(minutes=1)
    assert call["runtime_status"] == [
        df.OrchestrationRuntimeStatus.Completed,
        df.OrchestrationRuntimeStatus.Failed,
        df.OrchestrationRuntimeStatus.Terminated,
    ]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM api_nonces").fetchone() == (0,)
