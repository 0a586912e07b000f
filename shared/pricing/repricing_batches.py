"""The repricing job's batches (shared/pricing/repricing.py has the job, its states and why it works so).

A batch is one transaction: it takes its stones (the next key range of the pass, or, in the sweep, stones
under any other version), prices them under the pass's version with the one SQL definition of a price
(shared/pricing/sql.py), writes those not yet priced so with a price_history row per price that moved, and
moves the job's checkpoint, from the checkpoint it read under the job's row lock. `advance` applies batches
for a time slice: what one activity call does.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from shared.db.rows import one
from shared.pricing import repricing
from shared.pricing.repository import rule_set
from shared.pricing.sql import price_of

# A stone another transaction holds is retried after this; the sweep waits so for a consolidation batch.
_LOCKED_WAIT_SECONDS = 0.2


@dataclass(frozen=True)
class BatchResult:
    stones: int  # stones the batch took
    repriced: int  # of which the price changed (a price_history row each)
    value_delta_cents: int  # listed stones only
    last_key: uuid.UUID | None


# The batch: take (lock) its stones, price them under the pass's version with the one SQL definition of a
# price, write those not yet priced so, and a history row per price that moved. SKIP LOCKED: a stone a
# consolidation batch holds is left for the sweep, and this batch never waits for a row while holding others.
# A writer that changed a stone between this statement's snapshot and its lock makes PostgreSQL re-check
# the UPDATE's conditions on the row as it is now: the stone is priced from what it was, so it is written
# only if its payload and cost are still the same (else the sweep finds it, if it is not under the version).
_BATCH = """
WITH batch AS MATERIALIZED ({selection}),
before AS MATERIALIZED (
    SELECT d.diamond_id, d.payload_hash, d.cost_cents, d.price_cents, d.delisted_at IS NULL AS listed,
           price.price_cents AS new_price_cents, price.pricing_rule_id
    FROM batch JOIN diamonds d USING (diamond_id)
    LEFT JOIN LATERAL {price} AS price ON true
),
written AS (
    UPDATE diamonds d
    SET price_cents = b.new_price_cents, price_per_carat_cents = round(b.new_price_cents / d.carats)::bigint,
        pricing_version = {version}, pricing_rule_id = b.pricing_rule_id, updated_at = now()
    FROM before b
    WHERE d.diamond_id = b.diamond_id AND b.pricing_rule_id IS NOT NULL
      AND d.payload_hash = b.payload_hash AND d.cost_cents = b.cost_cents
      AND (d.pricing_version <> {version} OR d.price_cents <> b.new_price_cents
           OR d.pricing_rule_id IS DISTINCT FROM b.pricing_rule_id)
    RETURNING d.diamond_id, d.price_cents
),
history AS (
    INSERT INTO price_history (diamond_id, repricing_job_id, old_cost_cents, new_cost_cents, old_price_cents,
                               new_price_cents, pricing_version)
    SELECT b.diamond_id, {job}, b.cost_cents, b.cost_cents, b.price_cents, w.price_cents, {version}
    FROM written w JOIN before b USING (diamond_id)
    WHERE w.price_cents <> b.price_cents
    RETURNING 1
)
SELECT (SELECT diamond_id FROM batch ORDER BY diamond_id DESC LIMIT 1) AS last_key,
       (SELECT count(*) FROM batch) AS stones,
       (SELECT count(*) FROM before WHERE pricing_rule_id IS NULL) AS unpriced,
       (SELECT count(*) FROM history) AS repriced,
       (SELECT coalesce(sum(w.price_cents - b.price_cents) FILTER (WHERE b.listed), 0)
        FROM written w JOIN before b USING (diamond_id)) AS value_delta_cents
"""

# The next key range of the pass, from its checkpoint to its stop key (a cancel's pass ends where the job was).
_KEY_RANGE = """
SELECT diamond_id FROM diamonds
WHERE ({after}::uuid IS NULL OR diamond_id > {after}) AND ({stop}::uuid IS NULL OR diamond_id <= {stop})
ORDER BY diamond_id LIMIT {size} FOR UPDATE SKIP LOCKED
"""

# The sweep: stones under any other version, wherever they are (no order: a scan that stops at `size`).
_STRAYS = "SELECT diamond_id FROM diamonds WHERE pricing_version <> {version} LIMIT {size} FOR UPDATE SKIP LOCKED"


def apply_batch(
    conn: psycopg.Connection, job_id: uuid.UUID, *, after: uuid.UUID | None, sweeping: bool, size: int
) -> BatchResult | None:
    """Apply the job's next batch from checkpoint `after` (the sweep's when `sweeping`), in one transaction.

    None when the job is not where the caller saw it (the batch was applied already, or the job moved on):
    nothing is written. A key batch that finds no stone ends the key pass (the job sweeps next); a sweep
    batch that finds none while no stone is under another version ends the job.
    """
    seen = repricing.load_job(conn, job_id)
    if seen.pass_version is None:
        return None
    # The versions' tables first, as activation and cancel take them (then the job, then the catalogue).
    rules = rule_set(conn, seen.pass_version)
    with conn.transaction():
        job = repricing.load_job(conn, job_id, lock=True)
        if (
            job.status not in repricing.MOVING
            or job.pass_version != seen.pass_version
            or job.sweeping != sweeping
            or (not sweeping and job.last_key != after)
        ):
            return None
        # Every catalogue writer takes this row (the dataset-version trigger) while holding its stones: taking
        # it before any stone means this batch never waits for a row while holding others (no deadlock).
        conn.execute("SELECT version FROM dataset_version FOR UPDATE")
        version = sql.Literal(job.pass_version)
        size_literal = sql.Literal(size)
        if sweeping:
            selection = sql.SQL(_STRAYS).format(version=version, size=size_literal)
        else:
            selection = sql.SQL(_KEY_RANGE).format(
                after=sql.Literal(after), stop=sql.Literal(job.stop_key), size=size_literal
            )
        statement = sql.SQL(_BATCH).format(
            selection=selection, price=price_of(rules, "d"), version=version, job=sql.Literal(job_id)
        )
        with conn.cursor(row_factory=dict_row) as cur:
            row = one(cur.execute(statement).fetchone())
        if row["unpriced"]:
            raise repricing.UnpricedStones(
                f"pricing version {job.pass_version} has no rule for {row['unpriced']} stones: it needs a catch-all"
            )
        result = BatchResult(row["stones"], row["repriced"], row["value_delta_cents"], row["last_key"])
        _checkpoint(conn, job, result, sweeping)
    return result


def _checkpoint(conn: psycopg.Connection, job: repricing.Job, result: BatchResult, sweeping: bool) -> None:
    """Move the job past the batch, in the batch's transaction."""
    if result.stones:
        conn.execute(
            """UPDATE repricing_jobs SET last_key = CASE WHEN %(sweeping)s THEN last_key ELSE %(last)s END,
                      batches = batches + 1, stones = stones + %(stones)s, repriced = repriced + %(repriced)s,
                      value_delta_cents = value_delta_cents + %(delta)s
               WHERE job_id = %(job)s""",
            {
                "sweeping": sweeping,
                "last": result.last_key,
                "stones": result.stones,
                "repriced": result.repriced,
                "delta": result.value_delta_cents,
                "job": job.job_id,
            },
        )
    elif not sweeping:
        conn.execute("UPDATE repricing_jobs SET sweeping = true WHERE job_id = %s", (job.job_id,))
    elif not _strays_remain(conn, job):
        repricing.finish(conn, job, "succeeded" if job.status == "running" else "cancelled")


def _strays_remain(conn: psycopg.Connection, job: repricing.Job) -> bool:
    """Whether any stone is under another version (ones other transactions hold included)."""
    (found,) = one(
        conn.execute(
            "SELECT EXISTS (SELECT 1 FROM diamonds WHERE pricing_version <> %s)", (job.pass_version,)
        ).fetchone()
    )
    return bool(found)


def advance(
    pool: ConnectionPool,
    job_id: uuid.UUID,
    *,
    batch_size: int = repricing.DEFAULT_BATCH_SIZE,
    max_seconds: float = 30.0,
    max_batches: int | None = None,
) -> repricing.Job:
    """Apply the job's batches (and the cancel, once asked) for up to `max_seconds`; the job as it stands.

    The job's state is in the database, so a retried or duplicated call carries on where the other left.
    """
    deadline = time.monotonic() + max_seconds
    applied = 0
    while True:
        with pool.connection() as conn:
            job = repricing.load_job(conn, job_id)
            if job.status not in repricing.MOVING:
                return job
            if job.status == "running" and job.cancel_requested_at is not None:
                repricing.begin_cancel(conn, job_id)
                continue
            result = apply_batch(conn, job_id, after=job.last_key, sweeping=job.sweeping, size=batch_size)
        if result is not None and result.stones:
            applied += 1
        elif result is not None and job.sweeping:
            # The sweep found stones under another version that others hold: wait for them to let go.
            time.sleep(_LOCKED_WAIT_SECONDS)
        if time.monotonic() >= deadline or (max_batches is not None and applied >= max_batches):
            with pool.connection() as conn:
                return repricing.load_job(conn, job_id)
