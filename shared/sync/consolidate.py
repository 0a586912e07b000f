"""Consolidation: raw rows whose payload changed -> priced catalogue rows, in claimed batches.

Workers claim batches with FOR UPDATE SKIP LOCKED and a short lease that a background thread renews
while the batch is worked on; a worker that dies stops renewing, and its claim is taken over once the
lease lapses (seconds, not the reference system's 30 minutes). Writing a batch locks the raw rows the
worker still holds and writes only those, so two workers never write the same row, and a row is
marked consolidated with the hash that was actually mapped.

Mapping and pricing are set-based SQL (shared/sync/sql/): no row passes through Python, which is
what makes tens of thousands of rows a second possible on two cores (bench/README.md).

A payload the mapping cannot use becomes a reject in mapping_rejects, and a row the database itself
refuses on writing (a reason the mapping did not foresee) is found by writing the batch again in
halves and becomes a reject too: one bad stone never fails a batch, so never blocks later runs.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from shared.db.rows import one
from shared.pricing.repository import active_rule_set
from shared.pricing.sql import price_of
from shared.sync.bounds import MappingBounds
from shared.sync.statistics import refresh_statistics

log = logging.getLogger(__name__)


def _sql(name: str) -> str:
    return resources.files("shared.sync").joinpath("sql", name).read_text(encoding="utf-8")


_CLAIM, _HELD_FOR, _LOCK = _sql("claim.sql"), _sql("held_for.sql"), _sql("lock.sql")
_MAP, _PRICE, _REJECT = _sql("map.sql"), _sql("price.sql"), _sql("reject.sql")
_WRITE, _RELEASE, _RENEW = _sql("write.sql"), _sql("release.sql"), _sql("renew.sql")
_CLEAR = _sql("clear.sql")

# SQLSTATE classes a single row's data can cause: data exception, integrity constraint, program limit
# (an index row too large), raised by a trigger. Anything else (connection, deadlock, disk, our own
# SQL) is not the row's fault and fails the batch as before.
_ROW_REFUSALS = ("22", "23", "54", "P0")


class BatchRefused(RuntimeError):
    """The database refused so much of a batch that isolating rows would hide a systemic fault."""


class UnpricedStones(RuntimeError):
    """The active rule set does not price every stone (it lacks a catch-all rule): a configuration error."""


@dataclass
class ConsolidationResult:
    processed: int = 0
    catalogued: int = 0
    new: int = 0
    repriced: int = 0
    rejected: int = 0
    delisted: int = 0  # catalogued stones taken off sale because their new payload was rejected
    refused: int = 0  # of the rejected: rows the database refused on writing
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
    bounds: MappingBounds | None = None,
) -> ConsolidationResult:
    """Work the feed's backlog until it is empty or `max_seconds` have passed."""
    result = ConsolidationResult()
    deadline = time.monotonic() + max_seconds
    params = {"feed": feed, "limit": batch_size, "worker": worker, "lease": lease, "lab_grown": lab_grown_default}
    params |= (bounds or MappingBounds.from_settings()).__dict__
    with pool.connection() as conn:
        # A first load has just filled raw_stones: its joins must not be planned on the empty table's figures.
        refresh_statistics(conn)
    while True:
        with pool.connection() as conn:
            claimed = conn.execute(_CLAIM, params).rowcount
        if not claimed:
            # Nothing claimable. Rows another worker holds are either being finished by it or
            # abandoned; wait for their leases (a live worker renews, a dead one's lapse) and look again.
            with pool.connection() as conn:
                (held_for,) = one(conn.execute(_HELD_FOR, params).fetchone())
            if held_for is None:
                return result
            if time.monotonic() + held_for > deadline:
                result.more = True
                return result
            time.sleep(min(max(held_for, 0.05), 1.0))
            continue
        with _renewing(pool, feed, worker, lease), pool.connection() as conn, conn.transaction():
            _write_batch(conn, params, result)
        result.batches += 1
        if time.monotonic() >= deadline:
            result.more = True
            return result


def _write_batch(conn: psycopg.Connection, params: dict[str, Any], result: ConsolidationResult) -> None:
    """Map, price and write the rows this worker holds, in the caller's transaction."""
    (held,) = one(conn.execute(_LOCK, params).fetchone())
    # Room for a batch's payloads in memory: the mapping materialises them once instead of spilling.
    conn.execute("SET LOCAL work_mem = '64MB'")
    conn.execute(_MAP, {**params, "aliases": _aliases(conn)})
    rules = active_rule_set(conn)
    version = rules.version
    # No parameters: the generated SQL carries its values as literals (a % in one is then no placeholder).
    priced = conn.execute(sql.SQL(_PRICE).format(version=version, price=price_of(rules, "m"))).rowcount
    (unpriced,) = one(conn.execute("SELECT count(*) FROM priced WHERE pricing_rule_id IS NULL").fetchone())
    if unpriced:
        raise UnpricedStones(f"pricing version {version} has no rule for {unpriced} stones: it needs a catch-all")
    conn.execute(_CLEAR, params)
    existing, repriced, refused = _write_isolating(conn, params)
    for stone_id, reason in refused:
        conn.execute("UPDATE mapped SET reject_reason = %s WHERE stone_id = %s", (reason, stone_id))
    rejected, delisted = one(conn.execute(_REJECT, params).fetchone())
    conn.execute(_RELEASE, params)
    result.processed += held
    result.catalogued += priced - len(refused)
    result.rejected += rejected
    result.delisted += delisted
    result.refused += len(refused)
    result.new += priced - len(refused) - existing
    result.repriced += repriced


def _write_isolating(conn: psycopg.Connection, params: dict[str, Any]) -> tuple[int, int, list[tuple[str, str]]]:
    """Write `priced`; if the database refuses a row, write in halves to find it, and write the rest.

    Returns (existing, repriced, refused) where refused holds (stone_id, reason). Each attempt runs in a
    savepoint; k refused rows in a batch of n cost at most ~2k log2(n) attempts, on ever smaller sets.
    When the database refuses more than a tenth of the batch, the fault is not the rows' (a constraint,
    a trigger or a migration gone wrong refuses everything): the batch fails as a whole, so the run
    fails visibly ("consolidation failed") instead of succeeding with every stone rejected.
    """
    try:
        with conn.transaction():
            existing, _, repriced = one(conn.execute(_WRITE, params).fetchone())
        return existing, repriced, []
    except psycopg.Error as exc:
        if not _refused_by_row(exc):
            raise
        first_error = exc
        log.warning("a batch write was refused; isolating the rows", extra={"error": str(exc)})
    conn.execute("CREATE TEMP TABLE priced_batch ON COMMIT DROP AS SELECT * FROM priced")
    stone_ids = [row[0] for row in conn.execute("SELECT stone_id FROM priced_batch ORDER BY stone_id")]
    totals, refused, attempts = [0, 0], [], 0
    pending = _halves(stone_ids)
    while pending:
        subset = pending.pop()
        attempts += 1
        conn.execute("DELETE FROM priced")
        conn.execute("INSERT INTO priced SELECT * FROM priced_batch WHERE stone_id = ANY(%s)", (subset,))
        try:
            with conn.transaction():
                existing, _, repriced = one(conn.execute(_WRITE, params).fetchone())
        except psycopg.Error as exc:
            if not _refused_by_row(exc):
                raise
            if len(subset) == 1:
                refused.append((subset[0], _refusal_reason(exc)))
                if len(refused) > max(1, len(stone_ids) // 10):
                    raise BatchRefused(
                        f"the database refused more than a tenth of a batch of {len(stone_ids)} rows, "
                        f"so the fault is not the rows': {_refusal_reason(first_error)}"
                    ) from first_error
            else:
                pending.extend(_halves(subset))
            continue
        totals[0] += existing
        totals[1] += repriced
    # `priced` describes what was written again (the batch less the refused rows).
    conn.execute("DELETE FROM priced")
    conn.execute(
        "INSERT INTO priced SELECT * FROM priced_batch WHERE NOT stone_id = ANY(%s)", ([s for s, _ in refused],)
    )
    conn.execute("DROP TABLE priced_batch")
    log.warning(
        "rows refused by the database became rejects",
        extra={"refused": len(refused), "stone_ids": [s for s, _ in refused][:20], "attempts": attempts},
    )
    return totals[0], totals[1], refused


def _halves(stone_ids: list[str]) -> list[list[str]]:
    middle = len(stone_ids) // 2
    return [part for part in (stone_ids[:middle], stone_ids[middle:]) if part]


def _refused_by_row(exc: psycopg.Error) -> bool:
    return (exc.sqlstate or "")[:2] in _ROW_REFUSALS


def _refusal_reason(exc: psycopg.Error) -> str:
    message = exc.diag.message_primary or str(exc)
    return f"refused by the database ({exc.sqlstate}): {message}"[:500]


def _aliases(conn: psycopg.Connection) -> str:
    """The grade vocabularies as one JSON object, looked up per value by the mapping."""
    (aliases,) = one(
        conn.execute(
            """SELECT jsonb_object_agg(vocabulary, spellings)::text FROM (
                   SELECT vocabulary, jsonb_object_agg(alias, canonical) AS spellings
                   FROM grade_aliases GROUP BY vocabulary) AS v"""
        ).fetchone()
    )
    vocabularies: str = aliases
    return vocabularies


@contextmanager
def _renewing(pool: ConnectionPool, feed: str, worker: str, lease: timedelta) -> Iterator[None]:
    """Keep this worker's claims alive while the block runs."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease.total_seconds() / 3):
            try:
                with pool.connection() as conn:
                    conn.execute(_RENEW, {"feed": feed, "worker": worker, "lease": lease})
            except psycopg.Error:
                log.exception("claim renewal failed; the claim may lapse", extra={"worker": worker})

    # In a copy of this context: the renewal's log lines keep the run's correlation id and run id.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(renew,), name=f"renew-{worker}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
