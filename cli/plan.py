"""`caratflow plan`: plan a run of one or more feeds against the configured feed endpoint."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from psycopg_pool import ConnectionPool

from shared.config import Settings, get_settings
from shared.db.connect import open_migrated_pool
from shared.feed.registry import FEEDS, get_feed
from shared.planning.plan import Plan, plan_for
from shared.planning.store import open_scan_store


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("plan", help="scan feeds and print their partition plans")
    parser.add_argument("--feed", action="append", choices=sorted(FEEDS), help="feed(s) to plan; default: all")
    parser.add_argument("--since", type=_aware, help="plan an incremental run of stones updated since (ISO-8601)")
    parser.set_defaults(handler=_plan)


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give a timezone, e.g. 2026-11-22T10:00:00Z")
    return value


def _plan(args: argparse.Namespace) -> int:
    settings = get_settings()
    pool = open_migrated_pool(settings, name="caratflow-cli")
    try:
        for feed in args.feed or sorted(FEEDS):
            print_plan(*timed_plan(settings, pool, feed, since=args.since))
    finally:
        pool.close()
    return 0


def timed_plan(
    settings: Settings, pool: ConnectionPool, feed: str, *, since: datetime | None = None
) -> tuple[Plan, float]:
    spec = get_feed(feed)
    started = time.perf_counter()
    plan = plan_for(
        settings,
        spec,
        spec.open_source(settings, pool),
        open_scan_store(settings),
        updated_from=since,
        now=datetime.now(UTC),
    )
    return plan, time.perf_counter() - started


def print_plan(plan: Plan, seconds: float) -> None:
    print(f"\n{plan.feed}: {plan.kind} plan, {plan.expected_total:,} stones in {len(plan.partitions)} partitions")
    print(
        f"  {plan.count_queries} count queries in {seconds:.1f} s, scan {'reused' if plan.scan_reused else 'fresh'}"
        f" ({plan.scanned_at:%Y-%m-%d %H:%M:%S} UTC), balance max/mean {plan.balance:.2f}"
    )
    print(f"  {'#':>4}  {'$/ct from':>10}  {'$/ct to':>10}  {'stones':>9}")
    for partition in plan.partitions:
        upper = "open" if partition.dpc_to is None else f"{partition.dpc_to:,}"
        print(f"  {partition.partition_no:>4}  {partition.dpc_from:>10,}  {upper:>10}  {partition.expected_count:>9,}")
