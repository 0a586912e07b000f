"""Benchmark of the feed side: client pages/s fetched, and the planner's count queries and balance.

    .venv/bin/python bench/bench_feed.py [--sizes 100000 1000000] [--pages 300] [--write]

The emulator runs in its own process (`python -m emulator`), the request budget in a throwaway
embedded PostgreSQL. The client is measured with the budget set far above what it can use (1,000/s),
so the figures are what the client costs, not the budget: in production the 25 req/s budget, not the
client, bounds the fetch. `--write` puts the table into bench/README.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "bench"))

from common import emulator_process, machine, throwaway_database, write_section  # noqa: E402
from psycopg_pool import ConnectionPool  # noqa: E402

from emulator.config import EmulatorConfig  # noqa: E402
from shared.config import load_settings  # noqa: E402
from shared.feed.budget import PostgresRequestBudget  # noqa: E402
from shared.feed.nivoda.client import NivodaClient  # noqa: E402
from shared.feed.registry import get_feed  # noqa: E402
from shared.planning.plan import plan_full  # noqa: E402
from shared.planning.store import LocalScanStore  # noqa: E402

CREDENTIALS = EmulatorConfig()


def client(url: str, pool: ConnectionPool) -> NivodaClient:
    return NivodaClient(
        endpoint=url,
        username=CREDENTIALS.username,
        password=CREDENTIALS.password.get_secret_value(),
        budget=PostgresRequestBudget(pool, "bench", 1000),
    )


def fetch_rate(url: str, pool: ConnectionPool, pages: int, threads: int) -> tuple[float, float]:
    """Pages/s and stones/s of `threads` clients paging the natural feed at disjoint offsets."""
    feed = client(url, pool)
    feed.count({"labgrown": False})  # log in outside the measurement
    per_thread = pages // threads
    stones = [0] * threads

    def work(index: int) -> None:
        offset = index * per_thread * 50
        for _ in range(per_thread):
            page = feed.page({"labgrown": False}, offset)
            stones[index] += page.received
            offset += page.received

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    return per_thread * threads / seconds, sum(stones) / seconds


def plan_figures(url: str, pool: ConnectionPool, folder: Path) -> list[dict[str, Any]]:
    settings = load_settings(
        nivoda_endpoint=url,
        nivoda_username=CREDENTIALS.username,
        nivoda_password=CREDENTIALS.password,
        feed_rate_limit_per_second=1000,
    )
    rows = []
    for name in ("nivoda-natural", "nivoda-labgrown"):
        spec = get_feed(name)
        started = time.perf_counter()
        plan = plan_full(
            spec,
            spec.open_source(settings, pool),
            LocalScanStore(folder),
            now=datetime.now(UTC),
            target_size=settings.plan_target_partition_size,
            max_partitions=settings.plan_max_partitions,
        )
        counts = [p.expected_count for p in plan.partitions]
        rows.append(
            {
                "feed": name,
                "stones": plan.expected_total,
                "queries": plan.count_queries,
                "partitions": len(plan.partitions),
                "balance": plan.balance,
                "min": min(counts),
                "max": max(counts),
                "seconds": time.perf_counter() - started,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--write", action="store_true", help="write the tables into bench/README.md")
    args = parser.parse_args()

    fetch_rows, plan_rows = [], []
    with throwaway_database() as database, ConnectionPool(database, min_size=1, max_size=8) as pool:
        for size in args.sizes:
            with emulator_process(size, 7, "--short-page-rate", "0") as (url, _):
                one = fetch_rate(url, pool, args.pages, 1)
                four = fetch_rate(url, pool, args.pages, 4)
                fetch_rows.append((size, one, four))
                if size == max(args.sizes):
                    with tempfile.TemporaryDirectory() as scans:
                        plan_rows = plan_figures(url, pool, Path(scans))
            print(f"... {size:,} stones done", file=sys.stderr, flush=True)

    lines = [
        "| stones | client pages/s (1 thread) | stones/s | client pages/s (4 threads) | stones/s |",
        "|---:|---:|---:|---:|---:|",
    ]
    for size, (p1, s1), (p4, s4) in fetch_rows:
        lines.append(f"| {size:,} | {p1:.0f} | {s1:,.0f} | {p4:.0f} | {s4:,.0f} |")
    lines += [
        "",
        f"Planner at {max(args.sizes):,} stones (target 5,000 per partition, at most 200):",
        "",
        "| feed | stones | count queries | at 25 req/s | partitions | smallest | largest | max/mean | scan time here |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in plan_rows:
        lines.append(
            f"| {row['feed']} | {row['stones']:,} | {row['queries']} | {row['queries'] / 25:.0f} s | "
            f"{row['partitions']} | {row['min']:,} | {row['max']:,} | {row['balance']:.2f} | "
            f"{row['seconds']:.1f} s |"
        )
    lines += ["", f"Machine: {machine()}. Pages of 50 items with every item field; emulator in its own process."]
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_section("bench_feed", table)


if __name__ == "__main__":
    main()
