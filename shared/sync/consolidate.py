"""Consolidation: raw rows whose payload changed -> priced catalogue rows, in claimed batches.

Workers claim batches with FOR UPDATE SKIP LOCKED and a short lease that a background thread renews
while the batch is worked on; a worker that dies stops renewing, and its claim is taken over once the
lease lapses (seconds, not the reference system's 30 minutes). Writing a batch locks the raw rows the
worker still holds and writes only those, so two workers never write the same row, and a row is
marked consolidated with the hash that was actually mapped.

Mapping and pricing are set-based SQL (shared/sync/sql/): no row passes through Python, which is
what makes tens of thousands of rows a second possible on two cores (bench/README.md).
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
from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)


def _sql(name: str) -> str:
    return resources.files("shared.sync").joinpath("sql", name).read_text(encoding="utf-8")


_CLAIM, _HELD_FOR, _LOCK = _sql("claim.sql"), _sql("held_for.sql"), _sql("lock.sql")
_MAP, _PRICE, _REJECT = _sql("map.sql"), _sql("price.sql"), _sql("reject.sql")
_WRITE, _RELEASE, _RENEW = _sql("write.sql"), _sql("release.sql"), _sql("renew.sql")


class UnpricedStones(RuntimeError):
    """The active rule set does not price every stone (it lacks a catch-all rule): a configuration error."""


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
    params = {"feed": feed, "limit": batch_size, "worker": worker, "lease": lease, "lab_grown": lab_grown_default}
    while True:
        with pool.connection() as conn:
            claimed = conn.execute(_CLAIM, params).rowcount
        if not claimed:
            # Nothing claimable. Rows another worker holds are either being finished by it or
            # abandoned; wait for their leases (a live worker renews, a dead one's lapse) and look again.
            with pool.connection() as conn:
                (held_for,) = conn.execute(_HELD_FOR, params).fetchone()
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
    (held,) = conn.execute(_LOCK, params).fetchone()
    # Room for a batch's payloads in memory: the mapping materialises them once instead of spilling.
    conn.execute("SET LOCAL work_mem = '64MB'")
    conn.execute(_MAP, {**params, "aliases": _aliases(conn)})
    (version,) = conn.execute("SELECT pricing_version FROM pricing_rule_sets WHERE status = 'active'").fetchone()
    priced = conn.execute(_PRICE, {**params, "version": version}).rowcount
    (unpriced,) = conn.execute("SELECT count(*) FROM priced WHERE pricing_rule_id IS NULL").fetchone()
    if unpriced:
        raise UnpricedStones(f"pricing version {version} has no rule for {unpriced} stones: it needs a catch-all")
    rejected = conn.execute(_REJECT, params).rowcount
    existing, _, repriced = conn.execute(_WRITE, params).fetchone()
    conn.execute(_RELEASE, params)
    result.processed += held
    result.catalogued += priced
    result.rejected += rejected
    result.new += priced - existing
    result.repriced += repriced


def _aliases(conn: psycopg.Connection) -> str:
    """The grade vocabularies as one JSON object, looked up per value by the mapping."""
    (aliases,) = conn.execute(
        """SELECT jsonb_object_agg(vocabulary, spellings)::text FROM (
               SELECT vocabulary, jsonb_object_agg(alias, canonical) AS spellings
               FROM grade_aliases GROUP BY vocabulary) AS v"""
    ).fetchone()
    return aliases


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
