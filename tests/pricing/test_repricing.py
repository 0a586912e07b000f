"""The repricing job against PostgreSQL, driven step by step (no host): batches and their checkpoint, a batch
applied twice, the sweep, cancel, revert, failure and resume. tests/pricing/test_repricing_host.py runs the
orchestration on the local host against a synced catalogue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from subprocess import DEVNULL
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from local_host.client import LocalDurableClient
from shared.db.connect import open_pool
from shared.db.rows import one
from shared.pricing import audit, repricing, repricing_batches, sets
from shared.pricing.audit import Actor, AuditQuery
from shared.pricing.repository import rule_set
from shared.pricing.repricing_starts import REPRICE, reprice_request
from shared.pricing.rules import PriceAdjustments, PricingRule
from shared.pricing.sql import price_of

ALICE = Actor.operator("alice")
STONES = 2000

# Every priced column a job writes, per stone, in key order.
PRICES = """SELECT diamond_id, price_cents, price_per_carat_cents, pricing_version, pricing_rule_id
            FROM diamonds ORDER BY diamond_id"""
STONE = """SELECT diamond_id, feed, shape, carats, cost_cents, lab_grown, fancy_color, lab, color, clarity,
                  price_cents, price_per_carat_cents, pricing_version, pricing_rule_id, delisted_at
           FROM diamonds ORDER BY diamond_id"""


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def catalogue(conn: psycopg.Connection) -> None:
    fill_catalogue(conn, STONES)


def fill_catalogue(conn: psycopg.Connection, stones: int) -> None:
    """Stones of every type, priced under version 1 as consolidation prices them; a few delisted. The same
    stones (by stone_id) in every database; their diamond_id is random."""
    conn.execute(
        """INSERT INTO diamonds (feed, stone_id, offer_id, shape, carats, color, clarity, fancy_color, lab_grown, lab,
                                 availability, cost_cents, price_cents, price_per_carat_cents, pricing_version,
                                 payload_hash, last_seen_run_id, delisted_at)
           SELECT 'nivoda-natural', 's' || i, 'o' || i, (ARRAY['ROUND', 'OVAL', 'PEAR'])[1 + i %% 3],
                  (0.30 + (i %% 40) * 0.10)::numeric(7, 2),
                  CASE WHEN i %% 7 = 0 THEN NULL ELSE (ARRAY['D', 'E', 'F', 'G', 'H'])[1 + i %% 5] END,
                  (ARRAY['VS1', 'VS2', 'SI1', 'IF'])[1 + i %% 4], CASE WHEN i %% 7 = 0 THEN 'Yellow' END,
                  i %% 5 = 0, (ARRAY['GIA', 'IGI', 'HRD'])[1 + i %% 3], 'available',
                  5000 + (i * 7919) %% 2000000, 0, 0, 1, sha256(i::text::bytea), gen_random_uuid(),
                  CASE WHEN i %% 50 = 0 THEN now() END
           FROM generate_series(1, %s) AS i""",
        (stones,),
    )
    price = price_of(rule_set(conn, 1), "d")
    conn.execute(
        sql.SQL(
            """UPDATE diamonds d SET (pricing_rule_id, price_cents) = (SELECT * FROM {price} AS p),
                      price_per_carat_cents = round((SELECT p.price_cents FROM {price} AS p) / d.carats)::bigint"""
        ).format(price=price)
    )


def version_2(conn: psycopg.Connection) -> int:
    """A draft that prices differently from version 1: lists, roundings, a floor, a catch-all."""
    rules = [
        PricingRule(priority=10, name="lab-grown", stone_type="lab_grown", markup_percent=Decimal(50),
                    rounding="charm", rounding_step_cents=100, rounding_ending_cents=99),
        PricingRule(priority=20, name="fancy", stone_type="fancy", markup_percent=Decimal(30),
                    rounding="multiple", rounding_step_cents=1000),
        PricingRule(priority=30, name="GIA whites", labs=["GIA"], colors=["D", "E", "F"], markup_percent=Decimal(22),
                    floor_percent=Decimal(10)),
        PricingRule(priority=1000, name="everything else", markup_percent=Decimal("27.5"), markup_cents=1500),
    ]  # fmt: skip
    content = sets.RuleSetContent(note="v2", rules=rules, defaults=PriceAdjustments(rounding="dollar"))
    return sets.create(conn, ALICE, content).pricing_version


def prices(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(PRICES).fetchall()


def assert_priced_under(conn: psycopg.Connection, version: int) -> None:
    """Every stone, listed or not, carries `version` and the price RuleSet.price gives it."""
    rules = rule_set(conn, version)
    with conn.cursor(row_factory=dict_row) as cur:
        stones = cur.execute(STONE).fetchall()
    assert stones
    for row in stones:
        priced = rules.price(SimpleNamespace(**row))
        assert (row["pricing_version"], row["pricing_rule_id"], row["price_cents"]) == (
            version,
            priced.rule_id,
            priced.price_cents,
        ), row
        # As consolidation stores it: PostgreSQL's round, half away from zero.
        per_carat = (Decimal(priced.price_cents) / row["carats"]).quantize(Decimal(1), ROUND_HALF_UP)
        assert row["price_per_carat_cents"] == per_carat


def dataset_version(conn: psycopg.Connection) -> int:
    return int(one(conn.execute("SELECT version FROM dataset_version").fetchone())[0])


def run_to_end(pool: Any, job_id: uuid.UUID, batch_size: int = 300) -> repricing.Job:
    job = repricing_batches.advance(pool, job_id, batch_size=batch_size, max_seconds=60)
    assert job.finished, job
    return job


def begin(conn: psycopg.Connection, version: int, comment: str = "test") -> repricing.Job:
    job = repricing.begin(conn, version, ALICE, comment)
    return repricing.start(conn, job.job_id)


@pytest.mark.usefixtures("catalogue")
def test_a_job_reprices_every_stone_in_key_batches(conn, pool) -> None:
    before = dataset_version(conn)
    old = dict(conn.execute("SELECT diamond_id, price_cents FROM diamonds").fetchall())
    job = begin(conn, version_2(conn), "spring markups")
    assert (job.status, job.previous_version, job.pass_version, job.total) == ("running", 1, 2, STONES)
    # The target is the active version from the start: consolidation prices with it from then on.
    assert one(conn.execute("SELECT pricing_version FROM pricing_rule_sets WHERE status = 'active'").fetchone()) == (2,)

    job = run_to_end(pool, job.job_id)

    assert job.status == "succeeded"
    assert job.finished_at is not None
    assert_priced_under(conn, 2)
    assert job.batches == -(-STONES // 300)
    assert job.stones == STONES
    history = conn.execute(
        "SELECT diamond_id, old_price_cents, new_price_cents, pricing_version, run_id FROM price_history"
        " WHERE repricing_job_id = %s",
        (job.job_id,),
    ).fetchall()
    changed = {d: p for d, p in conn.execute("SELECT diamond_id, price_cents FROM diamonds").fetchall() if p != old[d]}
    assert len(history) == job.repriced == len(changed) > STONES // 2
    assert all((h[1], h[2], h[3], h[4]) == (old[h[0]], changed[h[0]], 2, None) for h in history)
    listed = dict(conn.execute("SELECT diamond_id, delisted_at IS NULL FROM diamonds").fetchall())
    assert job.value_delta_cents == sum(changed[d] - old[d] for d in changed if listed[d])
    assert dataset_version(conn) > before  # ETags and answer caches move
    (outcome,) = audit.entries(conn, AuditQuery(action="job_finished"))
    assert outcome.outcome is not None
    assert outcome.activation_id == job.activation_id
    assert (outcome.outcome.stones_repriced, outcome.outcome.value_delta_cents) == (job.repriced, job.value_delta_cents)


@pytest.mark.usefixtures("catalogue")
def test_a_batch_applied_twice_changes_nothing(conn) -> None:
    job = begin(conn, version_2(conn))
    first = repricing_batches.apply_batch(conn, job.job_id, after=None, sweeping=False, size=500)
    assert first is not None
    assert first.stones == 500
    assert first.repriced > 0
    state = (prices(conn), conn.execute("SELECT count(*) FROM price_history").fetchone(), dataset_version(conn))
    moved = repricing.load_job(conn, job.job_id)
    assert (moved.last_key, moved.batches) == (first.last_key, 1)

    # The same batch again (a retried activity): the checkpoint has moved, so nothing is applied.
    assert repricing_batches.apply_batch(conn, job.job_id, after=None, sweeping=False, size=500) is None
    # Even from a checkpoint put back by hand, the stones are under the version already: nothing changes.
    conn.execute("UPDATE repricing_jobs SET last_key = NULL WHERE job_id = %s", (job.job_id,))
    again = repricing_batches.apply_batch(conn, job.job_id, after=None, sweeping=False, size=500)
    assert again is not None
    assert (again.stones, again.repriced, again.value_delta_cents) == (500, 0, 0)
    assert (prices(conn), conn.execute("SELECT count(*) FROM price_history").fetchone()) == state[:2]
    assert dataset_version(conn) == state[2]  # no row written, no new ETag


@pytest.mark.usefixtures("catalogue")
def test_the_sweep_brings_back_stones_written_under_another_version_and_waits_for_held_ones(
    conn, pool, database_url
) -> None:
    job = begin(conn, version_2(conn))
    job = repricing_batches.advance(pool, job.job_id, batch_size=300, max_seconds=60, max_batches=3)
    # A consolidation batch that began before the activation wrote a stone under version 1 behind the
    # checkpoint, and another holds a stone ahead of it for the whole key pass (SKIP LOCKED leaves it).
    behind = one(conn.execute("SELECT min(diamond_id::text)::uuid FROM diamonds").fetchone())[0]
    conn.execute("UPDATE diamonds SET pricing_version = 1, price_cents = 1 WHERE diamond_id = %s", (behind,))
    ahead = one(conn.execute("SELECT max(diamond_id::text)::uuid FROM diamonds").fetchone())[0]
    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT 1 FROM diamonds WHERE diamond_id = %s FOR UPDATE", (ahead,))
        job = repricing_batches.advance(pool, job.job_id, batch_size=300, max_seconds=1.5)
        assert (job.status, job.stage) == ("running", "sweep")  # waiting for the held stone
        holder.rollback()
    job = run_to_end(pool, job.job_id)
    assert job.status == "succeeded"
    assert_priced_under(conn, 2)


@pytest.mark.usefixtures("catalogue")
def test_cancel_goes_back_to_the_previous_version_and_its_prices(conn, pool) -> None:
    original = prices(conn)
    job = begin(conn, version_2(conn))
    repricing_batches.advance(pool, job.job_id, batch_size=300, max_seconds=60, max_batches=3)
    assert prices(conn) != original
    asked = repricing.request_cancel(conn, job.job_id, "operator:bob")
    assert (asked.status, asked.cancel_requested_at is not None) == ("running", True)

    job = run_to_end(pool, job.job_id)

    assert (job.status, job.pass_version, job.cancelled_by) == ("cancelled", 1, "operator:bob")
    assert prices(conn) == original
    assert dict(conn.execute("SELECT pricing_version, status FROM pricing_rule_sets").fetchall()) == {
        1: "active",
        2: "retired",
    }
    (outcome,) = audit.entries(conn, AuditQuery(action="job_cancelled"))
    assert outcome.activation_id == job.activation_id
    with pytest.raises(repricing.RepricingConflict):
        repricing.request_cancel(conn, job.job_id, "operator:bob")


@pytest.mark.usefixtures("catalogue")
def test_a_pending_job_cancelled_changes_nothing_and_frees_the_next(conn) -> None:
    original = prices(conn)
    job = repricing.begin(conn, version_2(conn), ALICE, "test")
    with pytest.raises((repricing.JobAlreadyRunning, sets.ActivationInProgress)):
        repricing.begin(conn, 2, ALICE, "a second one")
    cancelled = repricing.request_cancel(conn, job.job_id, "operator:bob")
    assert cancelled.status == "cancelled"
    assert repricing.start(conn, job.job_id).status == "cancelled"  # an orchestration that starts late: nothing
    assert prices(conn) == original
    assert one(conn.execute("SELECT status FROM pricing_rule_sets WHERE pricing_version = 2").fetchone()) == ("draft",)
    assert repricing.begin(conn, 2, ALICE, "now").status == "pending"


@pytest.mark.usefixtures("catalogue")
def test_revert_restores_every_price_of_the_earlier_version(conn, pool) -> None:
    original = prices(conn)
    run_to_end(pool, begin(conn, version_2(conn)).job_id)
    assert prices(conn) != original
    back = begin(conn, 1, "spring markups were a mistake")
    assert (back.kind, back.previous_version) == ("revert", 2)
    assert run_to_end(pool, back.job_id).status == "succeeded"
    assert prices(conn) == original
    assert_priced_under(conn, 1)


@pytest.mark.usefixtures("catalogue")
def test_a_failed_job_keeps_its_target_active_and_resumes_from_its_checkpoint(conn, pool) -> None:
    job = begin(conn, version_2(conn))
    job = repricing_batches.advance(pool, job.job_id, batch_size=300, max_seconds=60, max_batches=2)
    failed = repricing.fail(conn, job.job_id, "advance_repricing: out of retries")
    assert (failed.status, failed.failed_in, failed.last_key) == ("failed", "running", job.last_key)
    assert repricing.fail(conn, job.job_id, "again").error == "advance_repricing: out of retries"
    assert one(conn.execute("SELECT pricing_version FROM pricing_rule_sets WHERE status = 'active'").fetchone()) == (2,)
    resumed = repricing.resume(conn, job.job_id)
    assert (resumed.status, resumed.last_key, resumed.error) == ("running", job.last_key, None)
    assert run_to_end(pool, job.job_id).status == "succeeded"
    assert_priced_under(conn, 2)


@pytest.mark.usefixtures("catalogue")
def test_a_job_that_failed_before_it_started_changed_nothing_and_its_version_is_activated_afresh(conn) -> None:
    original = prices(conn)
    job = repricing.begin(conn, version_2(conn), ALICE, "test")
    failed = repricing.fail(conn, job.job_id, "start_repricing: lock timeout")
    assert (failed.status, failed.failed_in) == ("failed", "pending")
    assert prices(conn) == original
    assert len(audit.entries(conn, AuditQuery(action="job_failed"))) == 1
    with pytest.raises(repricing.RepricingConflict):
        repricing.resume(conn, job.job_id)
    assert repricing.begin(conn, 2, ALICE, "again").status == "pending"


# --- a host killed during a job ---------------------------------------------------------------------------

CATALOGUE = """SELECT stone_id, price_cents, price_per_carat_cents, pricing_version, pricing_rule_id,
                      (SELECT count(*) FROM price_history h WHERE h.diamond_id = d.diamond_id)
               FROM diamonds d ORDER BY stone_id"""
KILLED_STONES = 40_000


def start_job(database_url: str, settings: Any) -> uuid.UUID:
    """A catalogue and a job to version 2 whose orchestration waits for a host."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        fill_catalogue(conn, KILLED_STONES)
        job = repricing.begin(conn, version_2(conn), ALICE, "killed on the way")
    pool = open_pool(settings, url=database_url)
    try:
        request = reprice_request(job.job_id, batch_size=500, slice_seconds=0.3)
        LocalDurableClient(pool).start_new(REPRICE, repricing.instance_id(job.job_id), request)
    finally:
        pool.close()
    return job.job_id


def host(database_url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CARATFLOW_LOCAL_SETTINGS": str(tmp_path / "none.json"), "DATABASE_URL": database_url}
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "host", "--until-idle"], env=env, stdout=DEVNULL, stderr=subprocess.PIPE
    )


def outcome(database_url: str, job_id: uuid.UUID) -> tuple[list[tuple[Any, ...]], tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        job = repricing.load_job(conn, job_id)
        return conn.execute(CATALOGUE).fetchall(), (job.status, job.stones, job.repriced, job.value_delta_cents)


@pytest.mark.slow
def test_a_host_killed_during_a_job_resumes_to_the_catalogue_of_an_uninterrupted_one(
    new_database, settings, tmp_path
) -> None:
    reference_db, killed_db = new_database(), new_database()
    reference_job, killed_job = start_job(reference_db, settings), start_job(killed_db, settings)
    uninterrupted = host(reference_db, tmp_path)
    assert uninterrupted.wait(300) == 0, uninterrupted.communicate()[1].decode()[-3000:]

    kills = 0
    with psycopg.connect(killed_db, autocommit=True) as conn:
        for at_batches in (10, 40):  # killed twice, well inside the key pass
            process = host(killed_db, tmp_path)
            while repricing.load_job(conn, killed_job).batches < at_batches and process.poll() is None:
                time.sleep(0.01)
            assert process.poll() is None, "the job ended before the kill"
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            kills += 1
        assert not repricing.load_job(conn, killed_job).finished
    resumed = host(killed_db, tmp_path)
    assert resumed.wait(300) == 0, resumed.communicate()[1].decode()[-3000:]

    expected, expected_job = outcome(reference_db, reference_job)
    assert expected_job[:2] == ("succeeded", KILLED_STONES)
    assert outcome(killed_db, killed_job) == (expected, expected_job)  # one history row per changed price too
