"""Benchmark of the main job: a full sync end to end, and each stage beside its ceiling.

    .venv/bin/python bench/bench_sync.py [--sizes 100000 1000000] [--latency-stones 25000] [--write]

Per inventory size, in one run, on one throwaway embedded PostgreSQL:
- end to end: a full sync of both feeds through the local host (the real orchestrators), the feed
  emulator in its own process, the request budget raised out of the way (1,000 req/s) so the figure
  is what caratflow costs: wall time, fetch stones/s, peak RSS of this process, and finalize on its
  own (the slower feed's finalize_run activity: a first load is where stale statistics bite);
- raw upsert rows/s: the same raw rows applied again through the fetch path (pages of 50: COPY into
  staging + INSERT ... ON CONFLICT + checkpoint), all unchanged, then all changed;
- the ceiling: one COPY of the same rows into a copy of the raw table;
- consolidation rows/s: every raw row consolidated by 2 workers per feed, into the catalogue after
  the changed pass (every row rewritten), then into an empty catalogue (first load).
Then, with 300 ms of feed latency under the default 25 req/s budget, the fetch wall time against
the ideal (pages / 25 s).
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "bench"))

import psycopg  # noqa: E402
from common import emulator_process, machine, throwaway_database, write_section  # noqa: E402

from emulator.config import EmulatorConfig  # noqa: E402
from local_host.runtime import LocalRuntime  # noqa: E402
from shared.config import Settings, load_settings  # noqa: E402
from shared.db.rows import one  # noqa: E402
from shared.feed.page import FeedItem, FeedPage  # noqa: E402
from shared.planning.partitions import Partition  # noqa: E402
from shared.runs import lifecycle, partitions  # noqa: E402
from shared.runs.starts import SYNC, sync_instance_id, sync_request  # noqa: E402
from shared.sync.bounds import MappingBounds  # noqa: E402
from shared.sync.consolidate import consolidate  # noqa: E402
from shared.sync.fetch import _apply_page  # noqa: E402
from shared.sync.finalize import finalize_run  # noqa: E402

FEEDS = ("nivoda-natural", "nivoda-labgrown")
CREDENTIALS = EmulatorConfig()


def settings_for(database: str, url: str, folder: Path, **overrides: Any) -> Settings:
    values = {
        "database_url": database,
        "nivoda_endpoint": url,
        "nivoda_username": CREDENTIALS.username,
        "nivoda_password": CREDENTIALS.password,
        "scan_store_dir": folder,
        "feed_rate_limit_per_second": 1000,
        "db_pool_max_size": 20,
    }
    return load_settings(**{**values, **overrides})


FINALIZE_SECONDS: dict[str, float] = {}  # per feed, of the last full_sync


def timed_finalize(conn: psycopg.Connection, run_id: uuid.UUID) -> dict[str, Any]:
    """finalize_run as the activity calls it, timed."""
    started = time.perf_counter()
    summary = finalize_run(conn, run_id)
    FINALIZE_SECONDS[summary["feed"]] = time.perf_counter() - started
    return summary


def full_sync(runtime: LocalRuntime) -> dict[str, Any]:
    """Both feeds at once, as their timers would start them; returns the summed figures."""
    import activities.sync

    # The finalize_run activity's call, timed (a name activities.sync imports, not one it exports).
    activities.sync.finalize = timed_finalize  # type: ignore[attr-defined]
    FINALIZE_SECONDS.clear()
    started = time.perf_counter()
    instances = [runtime.client.start_new(SYNC, sync_instance_id(f), sync_request(f, "full", "cli")) for f in FEEDS]
    statuses = [runtime.client.wait_for_completion(i, timeout=7200, poll=0.5) for i in instances]
    wall = time.perf_counter() - started
    summaries = [s.output for s in statuses]
    if not all(s.runtime_status == "Completed" and s.output["status"] == "succeeded" for s in statuses):
        raise SystemExit(f"a run did not succeed: {[(s.runtime_status, s.error, s.output) for s in statuses]}")
    return {
        "wall": wall,
        "stones": sum(s["fetched"] for s in summaries),
        "pages": sum(s["pages"] for s in summaries),
        "finalize": max(FINALIZE_SECONDS.values()),
    }


def raw_rows(database: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database) as conn:
        return conn.execute("SELECT feed, stone_id, offer_id, payload::text, payload_hash FROM raw_stones").fetchall()


def upsert_rate(database: str, rows: list[tuple[Any, ...]], *, changed: bool) -> float:
    """Rows/s through the fetch path's page transaction (pages of 50, one partition per feed)."""
    run_id = uuid.uuid4()
    # A run of its own feed name with one partition per feed, claimed as a fetch activity would.
    planned = [Partition(partition_no=n, dpc_from=0, dpc_to=None, expected_count=0) for n, _ in enumerate(FEEDS)]
    with psycopg.connect(database, autocommit=True) as conn:
        lifecycle.create_run(
            conn, run_id=run_id, feed="bench", kind="full", trigger="cli", instance_id=None, as_of=datetime.now(UTC)
        )
        lifecycle.save_plan(conn, run_id, planned, {})
        for number, _ in enumerate(FEEDS):
            partitions.claim(conn, run_id, number)
    pages = []  # built before the clock starts: only the database work is timed
    for number, feed in enumerate(FEEDS):
        mine = [r for r in rows if r[0] == feed]
        for start in range(0, len(mine), 50):
            items = []
            for _, stone, offer, payload, digest in mine[start : start + 50]:
                if changed:  # a payload that differs from the stored one: a new field at the end
                    payload = payload[:-1] + ', "bench_changed": true}'
                    digest = hashlib.sha256(payload.encode()).digest()
                items.append(FeedItem(stone, offer, payload, digest))
            pages.append((feed, number, FeedPage(start, items)))
    bounds = MappingBounds.from_settings()
    started = time.perf_counter()
    with psycopg.connect(database) as conn:
        for feed, number, page in pages:
            with conn.transaction():
                _apply_page(conn, feed, run_id, number, page, bounds)
    rate = len(rows) / (time.perf_counter() - started)
    with psycopg.connect(database, autocommit=True) as conn:
        lifecycle.set_status(conn, run_id, "succeeded")  # frees the feed name for the next measurement
    return rate


def copy_ceiling(database: str, rows: list[tuple[Any, ...]]) -> float:
    with psycopg.connect(database) as conn:
        conn.execute("CREATE TEMP TABLE raw_ceiling (LIKE raw_stones INCLUDING ALL)")
        run_id = uuid.uuid4()
        started = time.perf_counter()
        with conn.cursor().copy(
            "COPY raw_ceiling (feed, stone_id, offer_id, payload, payload_hash, "
            "first_seen_run_id, last_seen_run_id) FROM STDIN"
        ) as copy:
            for feed, stone, offer, payload, digest in rows:
                copy.write_row((feed, stone, offer, payload, digest, run_id, run_id))
        conn.commit()
        return len(rows) / (time.perf_counter() - started)


def consolidation_rate(runtime: LocalRuntime, database: str, workers: int, *, first_load: bool) -> float:
    """Rows/s consolidating every raw row: into an empty catalogue (first load: inserts), or into the
    catalogue after the changed-payload pass (every row rewritten)."""
    with psycopg.connect(database, autocommit=True) as conn:
        if first_load:
            conn.execute("TRUNCATE diamonds, price_history, mapping_rejects")
        # Every raw row queued (the changed-payload pass above has queued them already).
        conn.execute(
            "INSERT INTO raw_pending (feed, stone_id, payload_hash) SELECT feed, stone_id, payload_hash FROM raw_stones"
            " ON CONFLICT DO NOTHING"
        )
        (rows,) = one(conn.execute("SELECT count(*) FROM raw_pending").fetchone())
    started = time.perf_counter()
    threads = [
        threading.Thread(
            target=consolidate,
            args=(runtime.pool, feed),
            kwargs={
                "worker": f"bench-{feed}-{i}",
                "lab_grown_default": feed.endswith("labgrown"),
                "batch_size": runtime.settings.sync_consolidation_batch,
            },
        )
        for feed in FEEDS
        for i in range(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rate: float = rows / (time.perf_counter() - started)
    return rate


def latency_run(size: int) -> dict[str, Any]:
    """300 ms per request, the default 25 req/s budget: is the budget, not the latency, the limit?"""
    with (
        throwaway_database() as database,
        tempfile.TemporaryDirectory() as folder,
        emulator_process(size, 11, "--short-page-rate", "0", "--latency-ms", "300") as (url, _),
    ):
        settings = settings_for(
            database, url, Path(folder), feed_rate_limit_per_second=25, plan_target_partition_size=max(200, size // 40)
        )
        with LocalRuntime(settings, activity_workers=12) as runtime:
            result = full_sync(runtime)
            with runtime.pool.connection() as conn:
                (queries,) = one(conn.execute("SELECT sum((plan->>'count_queries')::int) FROM runs").fetchone())
                (fetch_wall,) = one(
                    conn.execute(
                        "SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM partitions"
                    ).fetchone()
                )
    return {**result, "queries": queries, "fetch_wall": float(fetch_wall)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--latency-stones", type=int, default=25_000)
    parser.add_argument("--workers", type=int, default=2, help="consolidators per feed")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    rows_out = []
    for size in args.sizes:
        with (
            throwaway_database() as database,
            tempfile.TemporaryDirectory() as folder,
            emulator_process(size, 7, "--short-page-rate", "0") as (url, _),
        ):
            settings = settings_for(database, url, Path(folder), plan_target_partition_size=max(1000, size // 100))
            with LocalRuntime(settings, activity_workers=6) as runtime:
                e2e = full_sync(runtime)
                peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                raw = raw_rows(database)
                unchanged = upsert_rate(database, raw, changed=False)
                changed = upsert_rate(database, raw, changed=True)
                ceiling = copy_ceiling(database, raw)
                rewritten = consolidation_rate(runtime, database, args.workers, first_load=False)
                loaded = consolidation_rate(runtime, database, args.workers, first_load=True)
                consolidated = (loaded, rewritten)
            rows_out.append((size, e2e, peak_mb, unchanged, changed, ceiling, consolidated))
            print(f"... {size:,}: {rows_out[-1]}", file=sys.stderr, flush=True)
        print(f"... {size:,} stones done", file=sys.stderr, flush=True)
    latency = latency_run(args.latency_stones)

    lines = [
        "| stones | end-to-end wall | finalize | fetch stones/s | raw upsert rows/s (unchanged / changed) | "
        "COPY ceiling rows/s | upsert / ceiling | consolidation rows/s (first load / all rewritten) | peak RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, e2e, peak, unchanged, changed, ceiling, consolidated in rows_out:
        lines.append(
            f"| {size:,} | {e2e['wall']:.1f} s | {e2e['finalize']:.1f} s | {e2e['stones'] / e2e['wall']:,.0f} | "
            f"{unchanged:,.0f} / {changed:,.0f} | {ceiling:,.0f} | "
            f"{changed / ceiling:.0%} - {unchanged / ceiling:.0%} | "
            f"{consolidated[0]:,.0f} / {consolidated[1]:,.0f} | {peak:,.0f} MB |"
        )
    ideal = latency["pages"] / 25
    ideal_all = (latency["pages"] + latency["queries"]) / 25
    lines += [
        "",
        f"With 300 ms feed latency and the 25 req/s budget ({args.latency_stones:,} stones, 12 activity workers): "
        f"{latency['pages']:,} pages fetched in {latency['fetch_wall']:.1f} s against an ideal of {ideal:.1f} s "
        f"({latency['fetch_wall'] / ideal - 1:+.0%}); the whole run, {latency['queries']} count queries included, "
        f"{latency['wall']:.1f} s against {ideal_all:.1f} s ({latency['wall'] / ideal_all - 1:+.0%}).",
        "",
        "Finalize: the slower feed's finalize_run activity within the end-to-end run (a first load).",
        "",
        f"Machine: {machine()}. Both feeds synced at once; budget 1,000 req/s except in the latency run; "
        "emulator in its own process; PostgreSQL 16 embedded (pgserver), default settings.",
    ]
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_section("bench_sync", table)


if __name__ == "__main__":
    main()
