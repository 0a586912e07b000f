"""Consolidation: raw rows whose payload changed -> priced catalogue rows, in claimed batches.

Workers claim batches with FOR UPDATE SKIP LOCKED and a short lease that a background thread renews
while the batch is worked on; a worker that dies stops renewing, and its claim is taken over once the
lease lapses (seconds, not the reference system's 30 minutes). Writing a batch locks the raw rows the
worker still holds and writes only those, so two workers never write the same row, and a row is
marked consolidated with the hash that was actually mapped: a payload that changed meanwhile stays
pending. Several consolidators can run at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from shared.catalogue.mapping import STONE_COLUMNS, Stone, UnmappableStone, map_payload
from shared.pricing.repository import active_rule_set
from shared.pricing.rules import RuleSet

log = logging.getLogger(__name__)

_PRICED_COLUMNS = (
    "price_cents",
    "price_per_carat_cents",
    "pricing_version",
    "pricing_rule_id",
    "payload_hash",
    "last_seen_run_id",
)
_STAGE_COLUMNS = STONE_COLUMNS + _PRICED_COLUMNS

_CLAIM = """
WITH picked AS (
    SELECT stone_id FROM raw_stones
    WHERE feed = %(feed)s AND consolidated_hash IS DISTINCT FROM payload_hash
      AND (claim_expires_at IS NULL OR claim_expires_at < clock_timestamp())
    ORDER BY changed_at, stone_id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE raw_stones r SET claimed_by = %(worker)s, claim_expires_at = clock_timestamp() + %(lease)s
FROM picked WHERE r.feed = %(feed)s AND r.stone_id = picked.stone_id
RETURNING r.stone_id, r.payload, r.payload_hash, r.last_seen_run_id
"""

_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, _STAGE_COLUMNS))
# Seconds until the first foreign claim on a pending row lapses; NULL when no pending row is claimed.
_HELD_FOR = """
SELECT extract(epoch FROM min(claim_expires_at) - clock_timestamp())::float8 FROM raw_stones
WHERE feed = %(feed)s AND consolidated_hash IS DISTINCT FROM payload_hash AND claimed_by IS NOT NULL
"""

_UPSERT = sql.SQL("""
INSERT INTO diamonds AS d ({columns})
SELECT {columns} FROM diamond_stage
ON CONFLICT (feed, stone_id) DO UPDATE SET
    {updates},
    updated_at = now(),
    listed_at = CASE WHEN d.delisted_at IS NULL THEN d.listed_at ELSE now() END,
    delisted_at = NULL
WHERE d.payload_hash IS DISTINCT FROM EXCLUDED.payload_hash
   OR d.price_cents IS DISTINCT FROM EXCLUDED.price_cents
   OR d.pricing_version IS DISTINCT FROM EXCLUDED.pricing_version
   OR d.delisted_at IS NOT NULL
""").format(
    columns=_COLUMNS,
    updates=sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in _STAGE_COLUMNS if c not in ("feed", "stone_id")
    ),
)
_COPY_STAGE = sql.SQL("COPY diamond_stage ({}) FROM STDIN").format(_COLUMNS)

_BEFORE = """
CREATE TEMP TABLE diamond_before ON COMMIT DROP AS
SELECT d.stone_id, d.cost_cents, d.price_cents FROM diamonds d JOIN diamond_stage s USING (feed, stone_id)
"""

_HISTORY = """
INSERT INTO price_history (diamond_id, run_id, old_cost_cents, new_cost_cents, old_price_cents, new_price_cents,
                           pricing_version)
SELECT d.diamond_id, s.last_seen_run_id, b.cost_cents, s.cost_cents, b.price_cents, s.price_cents, s.pricing_version
FROM diamond_stage s
JOIN diamond_before b USING (stone_id)
JOIN diamonds d ON d.feed = s.feed AND d.stone_id = s.stone_id
WHERE b.price_cents <> s.price_cents OR b.cost_cents <> s.cost_cents
"""


@dataclass
class ConsolidationResult:
    processed: int = 0
    catalogued: int = 0
    new: int = 0
    repriced: int = 0
    rejected: int = 0
    batches: int = 0
    more: bool = False  # stopped at the time budget with rows still pending

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def consolidate(
    pool: ConnectionPool,
    feed: str,
    *,
    worker: str,
    lab_grown_default: bool,
    batch_size: int = 2000,
    lease: timedelta = timedelta(seconds=10),
    max_seconds: float = 120.0,
) -> ConsolidationResult:
    """Work the feed's backlog until it is empty or `max_seconds` have passed."""
    result = ConsolidationResult()
    deadline = time.monotonic() + max_seconds
    while True:
        with pool.connection() as conn:
            claimed = conn.execute(
                _CLAIM, {"feed": feed, "limit": batch_size, "worker": worker, "lease": lease}
            ).fetchall()
        if not claimed:
            # Nothing claimable. Rows another worker holds are either being finished by it or
            # abandoned; wait for their leases (a live worker renews, a dead one's lapse) and look again.
            with pool.connection() as conn:
                (held_for,) = conn.execute(_HELD_FOR, {"feed": feed}).fetchone()
            if held_for is None:
                return result
            if time.monotonic() + held_for > deadline:
                result.more = True
                return result
            time.sleep(min(max(held_for, 0.05), 1.0))
            continue
        with _renewing(pool, feed, worker, lease):
            with pool.connection() as conn:
                rules = active_rule_set(conn)
            _write_batch(pool, feed, worker, claimed, rules, lab_grown_default, result)
        result.batches += 1
        if time.monotonic() >= deadline:
            result.more = True
            return result


def _write_batch(
    pool: ConnectionPool,
    feed: str,
    worker: str,
    claimed: list[tuple],
    rules: RuleSet,
    lab_grown_default: bool,
    result: ConsolidationResult,
) -> None:
    staged: list[tuple] = []
    rejects: list[tuple[str, bytes, str]] = []
    for stone_id, payload, payload_hash, run_id in claimed:
        try:
            stone = map_payload(feed, payload, lab_grown_default=lab_grown_default)
        except UnmappableStone as exc:
            rejects.append((stone_id, payload_hash, str(exc)))
            continue
        staged.append(_priced_row(stone, rules, payload_hash, run_id))
    with pool.connection() as conn, conn.transaction():
        held = {
            stone_id
            for (stone_id,) in conn.execute(
                "SELECT stone_id FROM raw_stones WHERE feed = %s AND stone_id = ANY(%s) AND claimed_by = %s FOR UPDATE",
                (feed, [row[0] for row in claimed], worker),
            )
        }
        if len(held) < len(claimed):
            log.warning(
                "claims lost to another consolidator; their rows are skipped",
                extra={"feed": feed, "worker": worker, "lost": len(claimed) - len(held)},
            )
        staged = [row for row in staged if row[STONE_COLUMNS.index("stone_id")] in held]
        rejects = [r for r in rejects if r[0] in held]
        new, repriced = _upsert(conn, staged) if staged else (0, 0)
        if rejects:
            with conn.cursor() as cur:
                cur.executemany(
                    """INSERT INTO mapping_rejects (feed, stone_id, payload_hash, reason) VALUES (%s, %s, %s, %s)
                       ON CONFLICT (feed, stone_id) DO UPDATE SET payload_hash = EXCLUDED.payload_hash,
                           reason = EXCLUDED.reason, rejected_at = now()""",
                    [(feed, *r) for r in rejects],
                )
        hashes = {row[0]: row[2] for row in claimed if row[0] in held}
        with conn.cursor() as cur:
            cur.executemany(
                """UPDATE raw_stones SET consolidated_hash = %s, claimed_by = NULL, claim_expires_at = NULL
                   WHERE feed = %s AND stone_id = %s AND claimed_by = %s""",
                [(payload_hash, feed, stone_id, worker) for stone_id, payload_hash in hashes.items()],
            )
    result.processed += len(held)
    result.catalogued += len(staged)
    result.new += new
    result.repriced += repriced
    result.rejected += len(rejects)


def _priced_row(stone: Stone, rules: RuleSet, payload_hash: bytes, run_id: Any) -> tuple:
    priced = rules.price(stone)
    per_carat = int((Decimal(priced.price_cents) / stone.carats).quantize(Decimal(1), ROUND_HALF_UP))
    values = tuple(getattr(stone, column) for column in STONE_COLUMNS)
    return (*values, priced.price_cents, per_carat, rules.version, priced.rule_id, payload_hash, run_id)


def _upsert(conn: psycopg.Connection, rows: list[tuple]) -> tuple[int, int]:
    """Upsert staged rows; return (new stones, stones whose price changed). Writes price history."""
    conn.execute("CREATE TEMP TABLE diamond_stage (LIKE diamonds INCLUDING DEFAULTS) ON COMMIT DROP")
    with conn.cursor().copy(_COPY_STAGE) as copy:
        for row in rows:
            copy.write_row(row)
    conn.execute(_BEFORE)
    (existing,) = conn.execute("SELECT count(*) FROM diamond_before").fetchone()
    conn.execute(_UPSERT)
    repriced = conn.execute(_HISTORY).rowcount
    return len(rows) - existing, repriced


@contextmanager
def _renewing(pool: ConnectionPool, feed: str, worker: str, lease: timedelta) -> Iterator[None]:
    """Keep this worker's claims alive while the block runs."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease.total_seconds() / 3):
            try:
                with pool.connection() as conn:
                    conn.execute(
                        """UPDATE raw_stones SET claim_expires_at = clock_timestamp() + %s
                           WHERE feed = %s AND claimed_by = %s""",
                        (lease, feed, worker),
                    )
            except psycopg.Error:
                log.exception("claim renewal failed; the claim may lapse", extra={"worker": worker})

    thread = threading.Thread(target=renew, name=f"renew-{worker}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
