"""`caratflow retention run [--dry-run]`: the daily retention sweep, on demand, with its counts."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from psycopg_pool import ConnectionPool

from local_host.client import AsyncLocalClient, LocalDurableClient
from shared.config import get_settings
from shared.db.connect import open_migrated_pool
from shared.retention.rules import orchestration_cutoff
from shared.retention.sweep import sweep
from triggers.maintenance import purge_orchestration_history


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("retention", help="delete what has outlived its retention")
    actions = parser.add_subparsers(dest="action", required=True, metavar="action")
    run = actions.add_parser("run", help="sweep now and print what went, per kind")
    run.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")
    parser.set_defaults(handler=_retention)


def _retention(args: argparse.Namespace) -> int:
    settings = get_settings()
    now = datetime.now(UTC)
    pool = open_migrated_pool(settings, name="caratflow-retention")
    try:
        report = sweep(pool, settings, now=now, dry_run=args.dry_run)
        verb = "would delete" if args.dry_run else "deleted"
        for kind, rows in report.deleted.items():
            batches = "" if args.dry_run else f" in {report.batches[kind]} batches"
            print(f"{kind:22} {verb} {rows}{batches}")
        print(_history_line(pool, orchestration_cutoff(settings, now), dry_run=args.dry_run))
        if args.dry_run:
            # The sweep frees some rows on its way; counting cannot see that without deleting.
            print("(not counted: the mapping rejects and delisted diamonds of raw rows that go, and runs they free)")
        if not report.complete:
            print(f"stopped at the time budget after {report.seconds} s; run again to continue")
    finally:
        pool.close()
    return 0


def _history_line(pool: ConnectionPool, cutoff: datetime, *, dry_run: bool) -> str:
    label = f"{'orchestration_history':22}"
    if dry_run:
        return f"{label} not counted on a dry run (finished before {cutoff:%Y-%m-%d} would go)"
    client = AsyncLocalClient(LocalDurableClient(pool))
    return f"{label} deleted {asyncio.run(purge_orchestration_history(client, cutoff))}"
