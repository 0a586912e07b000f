"""Crash and resume: the local host is SIGKILLed at random moments during a run, restarted, and the run
completes with the catalogue an uninterrupted run produces, no partition fetched again from its start."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from typing import Any

import psycopg
import pytest

from emulator.server import RunningEmulator
from shared.db.rows import one

CATALOGUE = """SELECT stone_id, offer_id, shape, carats, color, clarity, cost_cents, price_cents, pricing_version,
                      availability, delisted_at IS NULL FROM diamonds ORDER BY stone_id"""


@pytest.fixture(scope="module")
def slow_feed():
    # Latency stretches the run over seconds, so kills land in planning, fetching and consolidating.
    with RunningEmulator(size=10_000, seed=8, latency_ms=15, short_page_rate=0.1) as running:
        yield running


def environment(database_url: str, feed: RunningEmulator, tmp_path) -> dict[str, str]:
    return {
        **os.environ,
        "CARATFLOW_LOCAL_SETTINGS": str(tmp_path / "none.json"),
        "DATABASE_URL": database_url,
        "NIVODA_ENDPOINT": feed.url,
        "NIVODA_USERNAME": feed.config.username,
        "NIVODA_PASSWORD": feed.config.password.get_secret_value(),
        "FEED_RATE_LIMIT_PER_SECOND": "200",
        "PLAN_TARGET_PARTITION_SIZE": "300",
        "SYNC_BATCH_SIZE": "4",
        "SYNC_CONSOLIDATION_BATCH": "300",
        "SYNC_CONSOLIDATION_LEASE_SECONDS": "2",
        "SYNC_FETCH_RETRY_FIRST_SECONDS": "0.2",
        "SCAN_STORE_DIR": str(tmp_path / "scans"),
    }


def caratflow(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def pages_served(feed: RunningEmulator) -> int:
    served: int = feed.stats.snapshot()["pages_served"]
    return served


def finish(env: dict[str, str]) -> None:
    host = caratflow("host", "--until-idle", env=env)
    _, errors = host.communicate(timeout=300)
    assert host.returncode == 0, errors.decode()[-3000:]


def snapshot(database_url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    with psycopg.connect(database_url) as conn:
        catalogue = conn.execute(CATALOGUE).fetchall()
        runs = conn.execute("SELECT status, summary->>'fetched' FROM runs").fetchall()
        (pages,) = one(conn.execute("SELECT sum(pages) FROM partitions").fetchone())
    return catalogue, runs, pages


def summary(database_url: str) -> dict[str, Any]:
    """The run's summary, less what differs between any two runs (its id, how long it took)."""
    with psycopg.connect(database_url) as conn:
        (found,) = one(conn.execute("SELECT summary FROM runs").fetchone())
    return {key: value for key, value in found.items() if key not in ("run_id", "seconds", "stones_per_second")}


def await_run_row(process: subprocess.Popen[bytes], database_url: str, timeout: float = 120) -> None:
    """Wait until the CLI has started the orchestration and its first activity wrote the run.

    A kill before that leaves nothing to resume (no instance was stored), and a loaded machine can take
    seconds just to import the CLI: the random moments are counted from here, so that each kill lands in
    the run (planning, fetching or consolidating), whatever the machine's speed."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while process.poll() is None and time.monotonic() < deadline:
            if one(conn.execute("SELECT EXISTS (SELECT 1 FROM runs)").fetchone())[0]:
                return
            time.sleep(0.02)
    raise AssertionError(f"no run row within {timeout} s (CLI exit code {process.poll()})")


def kill_once_consolidating(process: subprocess.Popen[bytes], database_url: str) -> bool:
    """SIGKILL the process once some but not all of its run's batches are consolidated; False if it ended first."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        while process.poll() is None:
            (started,) = one(
                conn.execute(
                    """SELECT EXISTS (SELECT 1 FROM runs WHERE status = 'consolidating')
                              AND EXISTS (SELECT 1 FROM diamonds) AND EXISTS (SELECT 1 FROM raw_pending)"""
                ).fetchone()
            )
            if started:
                process.send_signal(signal.SIGKILL)
                process.wait(10)
                return True
            time.sleep(0.02)
    return False


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(slow_feed, new_database, tmp_path) -> None:
    reference_db = new_database()
    env = environment(reference_db, slow_feed, tmp_path / "reference")
    reference = caratflow("sync", "--feed", "nivoda-natural", "--full", env=env)
    _, errors = reference.communicate(timeout=300)
    assert reference.returncode == 0, errors.decode()[-3000:]
    expected, expected_runs, _ = snapshot(reference_db)
    assert expected_runs[0][0] == "succeeded"
    assert len(expected) > 4000
    expected_summary = summary(reference_db)
    assert expected_summary["catalogued"] == len(expected)

    chance = random.Random(20261122)
    for trial in range(3):
        database = new_database()
        env = environment(database, slow_feed, tmp_path / f"trial{trial}")
        served_before = pages_served(slow_feed)
        process = caratflow("sync", "--feed", "nivoda-natural", "--full", env=env)
        await_run_row(process, database)
        kills = 0
        for _ in range(3):  # killed up to three times per trial, each at a random moment
            time.sleep(chance.uniform(1.0, 3.5))
            if process.poll() is not None:
                break
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            kills += 1
            process = caratflow("host", "--until-idle", env=env)
        process.wait(300)
        finish(env)  # whatever is left, resumed to the end
        catalogue, run_rows, pages_applied = snapshot(database)
        assert kills >= 1
        assert run_rows == [("succeeded", str(len(expected)))]
        assert catalogue == expected
        assert summary(database) == expected_summary
        # Every page was applied once; a killed host can have had at most a few pages in flight (one per
        # activity worker), so nothing near a whole partition was fetched a second time.
        refetched = pages_served(slow_feed) - served_before - pages_applied
        assert 0 <= refetched <= kills * 4, f"{refetched} pages fetched twice over {kills} kills"


@pytest.mark.slow
def test_killed_in_consolidation_the_resumed_summary_is_the_uninterrupted_one(
    slow_feed, new_database, tmp_path
) -> None:
    """Batches committed before the kill count too: the summary is counted from the database."""
    reference_db = new_database()
    env = environment(reference_db, slow_feed, tmp_path / "reference")
    reference = caratflow("sync", "--feed", "nivoda-natural", "--full", env=env)
    _, errors = reference.communicate(timeout=300)
    assert reference.returncode == 0, errors.decode()[-3000:]
    database = new_database()
    env = environment(database, slow_feed, tmp_path / "consolidating")
    assert kill_once_consolidating(caratflow("sync", "--feed", "nivoda-natural", "--full", env=env), database)
    finish(env)
    assert snapshot(database)[0] == snapshot(reference_db)[0]
    assert summary(database) == summary(reference_db)
