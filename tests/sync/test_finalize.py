"""Finalize after a first load whose planner statistics are stale.

The state is built in SQL (100k stones in a few seconds) as a first load leaves it: the tables were last
analyzed when they held another feed's stones only, so the planner believes this feed has none. Before
the fix the delisting statement ran as a nested loop scanning every raw row per diamond: minutes at
33k stones, an effective hang at 100k. Each finalize here runs under a statement timeout, so that
failure is a quick error, not a hung test.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
import pytest

from shared.db.rows import one
from shared.sync import finalize
from shared.sync.finalize import finalize_run

FEED, OTHER = "nivoda-natural", "nivoda-labgrown"
STONES = 100_000
UNSEEN = 1_000  # listed stones this run did not see: delisted
BACK = 500  # delisted stones this run saw again: relisted
BOUND_SECONDS = 20

RAW = """
INSERT INTO raw_stones (feed, stone_id, offer_id, payload, payload_hash, first_seen_run_id, last_seen_run_id)
SELECT %(feed)s, 's' || g, 'o' || g, jsonb_build_object('id', g), sha256(g::text::bytea), %(old)s,
       CASE WHEN g <= %(unseen)s THEN %(old)s ELSE %(run)s END
FROM generate_series(1, %(n)s::int) AS g
"""
CATALOGUE = """
INSERT INTO diamonds (feed, stone_id, offer_id, shape, carats, lab_grown, availability, cost_cents, price_cents,
                      price_per_carat_cents, pricing_version, payload_hash, last_seen_run_id, delisted_at)
SELECT %(feed)s, 's' || g, 'o' || g, 'ROUND', 1.00, false, 'available', 100000, 120000, 120000, 1,
       sha256(g::text::bytea), %(old)s, CASE WHEN g > %(n)s - %(back)s THEN now() END
FROM generate_series(1, %(n)s::int) AS g
"""


def stale_first_load(conn: psycopg.Connection) -> uuid.UUID:
    """A complete full run of FEED over STONES stones, with statistics that describe only OTHER's."""
    for table in ("raw_stones", "raw_pending", "diamonds"):
        # Autovacuum must not refresh the statistics behind the test's back.
        conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
    old, run = uuid.uuid4(), uuid.uuid4()
    for feed, n, last_seen in ((OTHER, 5_000, old), (FEED, STONES, run)):
        params = {"feed": feed, "n": n, "old": old, "run": last_seen, "unseen": UNSEEN if feed == FEED else 0}
        conn.execute(RAW, params)
        conn.execute(CATALOGUE, {**params, "back": BACK if feed == FEED else 0})
        if feed == OTHER:
            conn.commit()
            conn.execute("ANALYZE raw_stones, raw_pending, diamonds")
    conn.execute(
        """INSERT INTO runs (run_id, feed, kind, status, trigger, as_of) VALUES (%s, %s, 'full', 'finalizing',
           'cli', now())""",
        (run, FEED),
    )
    conn.execute(
        """INSERT INTO partitions (run_id, partition_no, dpc_from, expected_count, status, rows_fetched, rows_new)
           VALUES (%s, 0, 0, %s, 'fetched', %s, %s)""",
        (run, STONES, STONES - UNSEEN, STONES - UNSEEN),
    )
    conn.commit()
    return run


def believed_rows(conn: psycopg.Connection) -> float:
    """The planner's estimate of FEED's listed stones."""
    (plan,) = one(
        conn.execute(
            "EXPLAIN (FORMAT JSON) SELECT * FROM diamonds WHERE feed = %s AND delisted_at IS NULL", (FEED,)
        ).fetchone()
    )
    rows: float = plan[0]["Plan"]["Plan Rows"]
    return rows


def timed_finalize(database_url: str, run: uuid.UUID) -> tuple[dict[str, Any], float]:
    options = f"-c statement_timeout={BOUND_SECONDS * 1000}"
    with psycopg.connect(database_url, options=options) as conn:
        started = time.monotonic()
        summary = finalize_run(conn, run)
        return summary, time.monotonic() - started


def assert_finalized(database_url: str, summary: dict[str, Any]) -> None:
    assert summary["status"] == "succeeded"
    assert summary["delisted"] == UNSEEN
    assert summary["relisted"] == BACK
    with psycopg.connect(database_url) as conn:
        (listed,) = one(
            conn.execute("SELECT count(*) FROM diamonds WHERE feed = %s AND delisted_at IS NULL", (FEED,)).fetchone()
        )
        (other,) = one(
            conn.execute("SELECT count(*) FROM diamonds WHERE feed = %s AND delisted_at IS NULL", (OTHER,)).fetchone()
        )
    assert listed == STONES - UNSEEN
    assert other == 5_000  # another feed's stones are never delisted by this feed's run


@pytest.mark.slow
def test_finalize_after_a_first_load_with_stale_statistics_is_bounded(database_url) -> None:
    with psycopg.connect(database_url) as conn:
        run = stale_first_load(conn)
        assert believed_rows(conn) < 100  # the planner sees (next to) none of FEED's stones
    summary, seconds = timed_finalize(database_url, run)
    assert seconds < BOUND_SECONDS
    assert_finalized(database_url, summary)
    with psycopg.connect(database_url) as conn:
        assert believed_rows(conn) > STONES / 2  # finalize refreshed the statistics


@pytest.mark.slow
def test_finalize_statements_do_not_depend_on_the_estimates(database_url, monkeypatch) -> None:
    """Statistics that stay stale (the activity counters finalize reads lag behind, or the threshold is
    not reached) still finish in bounded time: the joins do not trust the estimates."""
    monkeypatch.setattr(finalize, "refresh_statistics", lambda conn: [])
    with psycopg.connect(database_url) as conn:
        run = stale_first_load(conn)
    summary, seconds = timed_finalize(database_url, run)
    assert seconds < BOUND_SECONDS
    assert_finalized(database_url, summary)
    with psycopg.connect(database_url) as conn:
        assert believed_rows(conn) < 100  # still stale: the bound came from the plans, not from ANALYZE
