"""The retention sweep: each rule in turn, in batches of RETENTION_BATCH_SIZE rows, each batch its
own short transaction, until nothing is left or RETENTION_TIME_BUDGET_SECONDS are spent. What a
budget cuts short, the next sweep continues."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from psycopg_pool import ConnectionPool

from shared.config import Settings
from shared.db.rows import one
from shared.retention.rules import RULES, Rule, cutoffs

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    dry_run: bool
    deleted: dict[str, int] = field(default_factory=dict)  # rows per kind (on a dry run: rows that would go)
    batches: dict[str, int] = field(default_factory=dict)  # delete transactions that removed rows
    complete: bool = True  # False: the time budget ran out first
    seconds: float = 0.0


def sweep(
    pool: ConnectionPool, settings: Settings, *, now: datetime | None = None, dry_run: bool = False
) -> SweepReport:
    """Delete (or, on a dry run, count) what has outlived its retention; report rows and batches per kind."""
    params = {**cutoffs(settings, now or datetime.now(UTC)), "batch": settings.retention_batch_size}
    report = SweepReport(dry_run=dry_run)
    started = time.monotonic()
    deadline = started + settings.retention_time_budget_seconds
    with pool.connection() as conn:
        for rule in RULES:
            if dry_run:
                with conn.transaction():
                    report.deleted[rule.table] = one(conn.execute(rule.count_sql, params).fetchone())[0]
                continue
            report.deleted[rule.table] = report.batches[rule.table] = 0
            while True:
                if time.monotonic() >= deadline:
                    report.complete = False
                    break
                with conn.transaction():
                    removed = conn.execute(rule.delete_sql, params).rowcount
                if removed:
                    report.deleted[rule.table] += removed
                    report.batches[rule.table] += 1
                if removed < settings.retention_batch_size:
                    break
            _log_rule(rule, report)
            if not report.complete:
                break
    report.seconds = round(time.monotonic() - started, 3)
    if not report.complete:
        log.warning(
            "retention stopped at its time budget; the next sweep continues",
            extra={"deleted": report.deleted, "time_budget_seconds": settings.retention_time_budget_seconds},
        )
    return report


def _log_rule(rule: Rule, report: SweepReport) -> None:
    log.info(
        "retention swept",
        extra={"kind": rule.table, "deleted": report.deleted[rule.table], "batches": report.batches[rule.table]},
    )
