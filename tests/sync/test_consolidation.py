"""Consolidators: several on one backlog process each row once; a killed one's claim is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from shared.db.rows import one
from shared.feed.registry import get_feed
from shared.planning.partitions import Partition
from shared.runs import lifecycle
from shared.sync.consolidate import consolidate
from shared.sync.fetch import fetch_partition

FEED = "nivoda-labgrown"


@pytest.fixture
def backlog(runtime, pool) -> int:
    """Raw rows of the whole lab-grown feed, fetched but not consolidated; returns how many."""
    run_id = uuid.uuid4()
    with pool.connection() as conn:
        lifecycle.create_run(
            conn, run_id=run_id, feed=FEED, kind="full", trigger="cli", instance_id=None, as_of=datetime.now(UTC)
        )
        lifecycle.save_plan(conn, run_id, [Partition(partition_no=0, dpc_from=0, dpc_to=None, expected_count=0)], {})
    source = get_feed(FEED).open_source(runtime.settings, pool)
    fetched = fetch_partition(pool, source, run_id, 0, page_size=50, max_pages=1000)
    assert fetched.rows_fetched > 1000
    return fetched.rows_fetched


def _counts(conn: psycopg.Connection) -> tuple[int, int, int]:
    counts: tuple[int, int, int] = one(
        conn.execute(
            """SELECT (SELECT count(*) FROM raw_pending),
                      (SELECT count(*) FROM diamonds), (SELECT count(*) FROM mapping_rejects)"""
        ).fetchone()
    )
    return counts


def test_two_consolidators_process_every_row_once(pool, backlog: int) -> None:
    results = []

    def work(name: str) -> None:
        results.append(consolidate(pool, FEED, worker=name, lab_grown_default=True, batch_size=100))

    workers = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert all(r.processed > 0 for r in results), "both consolidators took part"
    assert sum(r.processed for r in results) == backlog  # no row processed twice, none skipped
    with pool.connection() as conn:
        pending, diamonds, rejects = _counts(conn)
        assert pending == 0
        assert diamonds + rejects == backlog
        assert sum(r.new for r in results) == diamonds
        assert conn.execute("SELECT count(*) FROM price_history").fetchone() == (0,)


KILLABLE = """
import sys, time
from datetime import timedelta
from psycopg_pool import ConnectionPool
import shared.sync.consolidate as c
original = c._write_batch
def slow(*args, **kwargs):
    print("claimed", flush=True)
    time.sleep(60)  # killed here, mid-batch, holding its claim
c._write_batch = slow
with ConnectionPool(sys.argv[1], min_size=1, max_size=2) as pool:
    c.consolidate(pool, sys.argv[2], worker="doomed", lab_grown_default=True, batch_size=300,
                  lease=timedelta(seconds=2))
"""


def test_killed_consolidator_loses_its_lease_and_another_finishes(pool, backlog: int, database_url: str) -> None:
    doomed = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, database_url, FEED],
        stdout=subprocess.PIPE,
        cwd=os.getcwd(),
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert doomed.stdout is not None
    assert doomed.stdout.readline().strip() == b"claimed"
    with pool.connection() as conn:
        held = conn.execute("SELECT count(*) FROM raw_pending WHERE claimed_by = 'doomed'").fetchone()[0]
    assert held == 300
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    killed_at = time.monotonic()

    result = consolidate(
        pool, FEED, worker="survivor", lab_grown_default=True, batch_size=500, lease=timedelta(seconds=2)
    )
    assert result.processed == backlog  # the dead worker's 300 rows included
    assert time.monotonic() - killed_at < 15  # taken over within seconds of the lease lapsing
    with pool.connection() as conn:
        pending, diamonds, rejects = _counts(conn)
        assert pending == 0
        assert diamonds + rejects == backlog
        assert conn.execute("SELECT count(*) FROM raw_pending").fetchone() == (0,)
