"""Benchmark of pricing (issue 13): the preview of a draft, and the repricing job beside its ceiling.

    .venv/bin/python bench/bench_pricing.py [--size 100000] [--keep DIR | --database URL] [--write]

On a catalogue of `--size` stones built by the real main job (bench/api_catalogue.py: a full sync from
the feed emulator into a throwaway embedded PostgreSQL, or one kept with --keep), in ONE run:
1. a draft: a copy of the active version with every markup 3 points higher and a charm rounding (x.99 dollars)
   by default, which moves nearly every price; its preview (shared/pricing/preview.py), timed twice;
2. the repricing job activating it, run to `succeeded` through the real `pricing_reprice` orchestration on
   the local host (LocalRuntime: the orchestrator and its activities, default batch size and slice), as the
   API's activate starts it: wall time from start to completion, and rows/s over every stone;
3. the ceiling: `UPDATE diamonds SET price_cents = price_cents + 1` over the same rows in the same
   key-range batches (one transaction per batch, same batch size, same pool);
4. what lies between, to say where the job's extra cost goes: the job's own write (the same five columns,
   priced by the same SQL) without history, then with its price_history rows, then also with the job's row
   locks (FOR UPDATE SKIP LOCKED); none with the job's checks or checkpoint. The priced write is measured
   twice (first and last), which shows the run-to-run spread.
Every phase starts from a VACUUMed table after a CHECKPOINT, and a first ceiling pass (not in the ratio;
`--no-warm-up` skips it) rewrites the freshly built, packed table before the job, so that no phase pays
alone for extending it. The write phases alternate between the two versions so that each rewrites every
price, and the catalogue ends priced under the active version (`--no-locks` skips the row-lock step and
the second priced write).
`--drop-indexes` then drops the catalogue's secondary indexes, runs the ceiling and the priced write again
and recreates them: what index maintenance costs.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "bench"))

import psycopg  # noqa: E402
from api_catalogue import catalogue, settings_for_api  # noqa: E402
from common import README, machine, progress, write_section  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg_pool import ConnectionPool  # noqa: E402

from local_host.runtime import LocalRuntime  # noqa: E402
from shared.db.rows import one  # noqa: E402
from shared.pricing import preview, repricing, sets  # noqa: E402
from shared.pricing.audit import Actor  # noqa: E402
from shared.pricing.repository import rule_set  # noqa: E402
from shared.pricing.repricing import DEFAULT_BATCH_SIZE  # noqa: E402
from shared.pricing.repricing_starts import DEFAULT_SLICE_SECONDS, REPRICE, reprice_request  # noqa: E402
from shared.pricing.rules import PriceAdjustments  # noqa: E402
from shared.pricing.sql import price_of  # noqa: E402

BENCH = Actor.operator("bench")
SECTION = "bench_pricing"

# The next key range, as the job takes it (shared/pricing/repricing_batches.py), without its row locks.
_KEYS = """SELECT diamond_id FROM diamonds WHERE ({after}::uuid IS NULL OR diamond_id > {after})
           ORDER BY diamond_id LIMIT {size}{lock}"""

_CEILING = """
WITH batch AS MATERIALIZED ({keys}),
written AS (UPDATE diamonds d SET price_cents = d.price_cents + 1 FROM batch WHERE d.diamond_id = batch.diamond_id
            RETURNING 1)
SELECT (SELECT diamond_id FROM batch ORDER BY diamond_id DESC LIMIT 1) AS last_key, (SELECT count(*) FROM written)
"""

# The job's write (same columns, same pricing SQL), with or without its history rows; no locks, no checks.
_PRICED = """
WITH batch AS MATERIALIZED ({keys}),
before AS MATERIALIZED (
    SELECT d.diamond_id, d.cost_cents, d.price_cents, price.price_cents AS new_price_cents, price.pricing_rule_id
    FROM batch JOIN diamonds d USING (diamond_id) LEFT JOIN LATERAL {price} AS price ON true
),
written AS (
    UPDATE diamonds d
    SET price_cents = b.new_price_cents, price_per_carat_cents = round(b.new_price_cents / d.carats)::bigint,
        pricing_version = {version}, pricing_rule_id = b.pricing_rule_id, updated_at = now()
    FROM before b WHERE d.diamond_id = b.diamond_id
    RETURNING d.diamond_id, d.price_cents
){history}
SELECT (SELECT diamond_id FROM batch ORDER BY diamond_id DESC LIMIT 1) AS last_key, (SELECT count(*) FROM written)
"""

_HISTORY = """,
history AS (
    INSERT INTO price_history (diamond_id, repricing_job_id, old_cost_cents, new_cost_cents, old_price_cents,
                               new_price_cents, pricing_version)
    SELECT b.diamond_id, {job}, b.cost_cents, b.cost_cents, b.price_cents, w.price_cents, {version}
    FROM written w JOIN before b USING (diamond_id)
    WHERE w.price_cents <> b.price_cents
    RETURNING 1
)"""


# --- the draft and its preview ----------------------------------------------------------------------------


def make_draft(conn: psycopg.Connection, markup_points: Decimal) -> tuple[int, int]:
    """A copy of the active version, every markup `markup_points` higher, a charm rounding by default."""
    (active,) = one(conn.execute("SELECT pricing_version FROM pricing_rule_sets WHERE status = 'active'").fetchone())
    draft = sets.copy(conn, active, BENCH, note="bench_pricing")
    rules = [
        rule.model_copy(update={"rule_id": None, "markup_percent": (rule.markup_percent or Decimal(0)) + markup_points})
        for rule in draft.rules
    ]
    defaults = draft.defaults.model_copy(
        update={"rounding": "charm", "rounding_step_cents": 100, "rounding_ending_cents": 99}
    )
    content = sets.RuleSetContent(note="bench_pricing", defaults=PriceAdjustments(**defaults.model_dump()), rules=rules)
    sets.edit(conn, draft.pricing_version, content, BENCH)
    return int(active), draft.pricing_version


def time_preview(database: str, version: int) -> dict[str, Any]:
    with psycopg.connect(database, autocommit=True) as conn:
        started = time.perf_counter()
        first = preview.preview(conn, version)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        preview.preview(conn, version)
        warm = time.perf_counter() - started
    total = first.total
    progress(f"preview: {cold:.2f} s, then {warm:.2f} s; {total.changed:,} of {total.stones:,} listed stones change")
    return {"cold": cold, "warm": warm, "stones": total.stones, "changed": total.changed, "up": total.up}


# --- the job ---------------------------------------------------------------------------------------------


def run_job(runtime: LocalRuntime, version: int, batch_size: int, slice_seconds: float) -> dict[str, Any]:
    """Activate `version` as the API does (begin, then start the orchestration) and wait for the end."""
    with runtime.pool.connection() as conn:
        conn.autocommit = True
        job = repricing.begin(conn, version, BENCH, "bench_pricing")
    request = reprice_request(job.job_id, batch_size=batch_size, slice_seconds=slice_seconds)
    started = time.perf_counter()
    instance = runtime.client.start_new(REPRICE, repricing.instance_id(job.job_id), request)
    status = runtime.client.wait_for_completion(instance, timeout=3600, poll=0.05)
    wall = time.perf_counter() - started
    if status.runtime_status != "Completed" or status.output["status"] != "succeeded":
        raise SystemExit(f"the repricing job did not succeed: {status.runtime_status} {status.output} {status.error}")
    with runtime.pool.connection() as conn:
        done = repricing.load_job(conn, job.job_id)
    assert done.started_at is not None
    assert done.finished_at is not None
    inside = (done.finished_at - done.started_at).total_seconds()
    progress(
        f"job: {done.stones:,} stones ({done.repriced:,} repriced) in {wall:.1f} s ({done.stones / wall:,.0f}/s),"
        f" {done.batches} batches"
    )
    return {
        "job_id": done.job_id,
        "wall": wall,
        "inside": inside,
        "stones": done.stones,
        "repriced": done.repriced,
        "batches": done.batches,
        "rate": done.stones / wall,
    }


# --- the ceiling and the steps between ------------------------------------------------------------------


def key_batches(
    pool: ConnectionPool, statement: str, batch_size: int, *, lock: bool = False, **parts: sql.Composable
) -> dict[str, Any]:
    """Apply `statement` over the whole catalogue in key-range batches, one transaction each; rows/s.
    `lock`: take the batch's rows as the job does (FOR UPDATE SKIP LOCKED)."""
    locking = sql.SQL(" FOR UPDATE SKIP LOCKED" if lock else "")
    after: uuid.UUID | None = None
    rows = batches = 0
    started = time.perf_counter()
    while True:
        keys = sql.SQL(_KEYS).format(after=sql.Literal(after), size=sql.Literal(batch_size), lock=locking)
        with pool.connection() as conn, conn.transaction():
            last, written = one(conn.execute(sql.SQL(statement).format(keys=keys, **parts)).fetchone())
        if last is None:
            break
        after, rows, batches = last, rows + written, batches + 1
    wall = time.perf_counter() - started
    return {"rows": rows, "batches": batches, "wall": wall, "rate": rows / wall}


def ceiling(pool: ConnectionPool, batch_size: int) -> dict[str, Any]:
    result = key_batches(pool, _CEILING, batch_size)
    progress(f"ceiling (plain UPDATE): {result['rows']:,} rows in {result['wall']:.1f} s ({result['rate']:,.0f}/s)")
    return result


def priced_write(
    pool: ConnectionPool, version: int, batch_size: int, *, history: uuid.UUID | None = None, lock: bool = False
) -> dict[str, Any]:
    with pool.connection() as conn:
        price = price_of(rule_set(conn, version), "d")
    literal = sql.Literal(version)
    extra = sql.SQL(_HISTORY).format(job=sql.Literal(history), version=literal) if history else sql.SQL("")
    result = key_batches(pool, _PRICED, batch_size, lock=lock, price=price, version=literal, history=extra)
    what = "priced write" + (" + history" if history else "") + (" + row locks" if lock else "")
    progress(f"{what} (v{version}): {result['rows']:,} rows in {result['wall']:.1f} s ({result['rate']:,.0f}/s)")
    return result


def settle(database: str) -> None:
    """The same start for every phase: dead rows of the last one vacuumed, its dirty pages written."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE diamonds")
        conn.execute("VACUUM price_history")
        conn.execute("CHECKPOINT")


def measured(database: str, phase: Any) -> dict[str, Any]:
    """Run `phase()` from a settled table; adds the WAL it wrote (MB)."""
    settle(database)
    with psycopg.connect(database, autocommit=True) as conn:
        (start,) = one(conn.execute("SELECT pg_current_wal_lsn()").fetchone())
        result: dict[str, Any] = phase()
        (wal,) = one(conn.execute("SELECT pg_current_wal_lsn() - %s::pg_lsn", (start,)).fetchone())
    result["wal_mb"] = float(wal) / 2**20
    return result


def drop_indexes(database: str) -> list[str]:
    """Drop the catalogue's secondary indexes; their definitions, to create them again."""
    with psycopg.connect(database, autocommit=True) as conn:
        rows = conn.execute(
            """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
               WHERE i.indrelid = 'diamonds'::regclass AND NOT i.indisprimary AND NOT i.indisunique"""  # the keys stay
        ).fetchall()
        for name, _ in rows:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    return [definition for _, definition in rows]


def create_indexes(database: str, definitions: list[str]) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        for definition in definitions:
            conn.execute(definition)  # pg_get_indexdef's own text
        conn.execute("ANALYZE diamonds")


# --- the run ---------------------------------------------------------------------------------------------


def database_facts(database: str) -> dict[str, Any]:
    with psycopg.connect(database) as conn:
        stones, listed = one(
            conn.execute("SELECT count(*), count(*) FILTER (WHERE delisted_at IS NULL) FROM diamonds").fetchone()
        )
        table, indexes, count, buffers = one(
            conn.execute(
                """SELECT pg_size_pretty(pg_table_size('diamonds')), pg_size_pretty(pg_indexes_size('diamonds')),
                          (SELECT count(*) FROM pg_index WHERE indrelid = 'diamonds'::regclass),
                          current_setting('shared_buffers')"""
            ).fetchone()
        )
        (rules,) = one(
            conn.execute(
                "SELECT count(*) FROM pricing_rules r JOIN pricing_rule_sets s USING (pricing_version)"
                " WHERE s.status = 'active'"
            ).fetchone()
        )
    return {
        "stones": stones,
        "listed": listed,
        "table": table,
        "indexes": indexes,
        "index_count": count,
        "shared_buffers": buffers,
        "rules": rules,
    }


def run(database: str, args: argparse.Namespace) -> dict[str, Any]:
    facts = database_facts(database)
    progress(
        f"{facts['stones']:,} stones ({facts['listed']:,} listed); diamonds {facts['table']} + {facts['indexes']}"
        f" in {facts['index_count']} indexes; shared_buffers {facts['shared_buffers']}"
    )
    with psycopg.connect(database, autocommit=True) as conn:
        old, new = make_draft(conn, Decimal(args.markup_points))
    results: dict[str, Any] = {"facts": facts, "old": old, "new": new, "batch_size": args.batch_size}
    results["load_before"] = os.getloadavg()[0]
    settle(database)
    results["preview"] = time_preview(database, new)
    with tempfile.TemporaryDirectory() as folder:
        settings = settings_for_api(database, Path(folder) / "secrets.json")
        with LocalRuntime(settings, activity_workers=2) as runtime:
            pool, size = runtime.pool, args.batch_size
            if not args.no_warm_up:
                # The first rewrite of a freshly built (packed) table must extend it; every later one finds
                # the room the last one's VACUUM freed. So that every phase below meets the table alike.
                results["warm_up"] = measured(database, lambda: ceiling(pool, size))
            results["job"] = measured(database, lambda: run_job(runtime, new, size, args.slice_seconds))
            job_id = results["job"]["job_id"]
            results["ceiling"] = measured(database, lambda: ceiling(pool, size))
            # Back and forth between the versions, so each pass rewrites every price; ends under `new`.
            results["priced"] = measured(database, lambda: priced_write(pool, old, size))
            results["history"] = measured(database, lambda: priced_write(pool, new, size, history=job_id))
            if not args.no_locks:
                results["locked"] = measured(database, lambda: priced_write(pool, old, size, history=job_id, lock=True))
                # Back under the active version; a second sample of the priced write.
                results["priced_again"] = measured(database, lambda: priced_write(pool, new, size))
            if args.drop_indexes:
                definitions = drop_indexes(database)
                progress(f"dropped {len(definitions)} secondary indexes")
                results["dropped"] = len(definitions)
                try:
                    results["ceiling_noidx"] = measured(database, lambda: ceiling(pool, size))
                    results["priced_noidx"] = measured(database, lambda: priced_write(pool, old, size))
                    results["history_noidx"] = measured(database, lambda: priced_write(pool, new, size, history=job_id))
                finally:
                    progress("creating the indexes again...")
                    create_indexes(database, definitions)
    results["load_after"] = os.getloadavg()[1]
    return results


# --- the tables ------------------------------------------------------------------------------------------

MAIN_HEADER = (
    "| stones (listed) | preview s (again) | job wall s | job rows/s | ceiling rows/s | job / ceiling"
    " | priced write rows/s (again) | + history rows/s | + row locks rows/s | WAL MB/1k rows: job / ceiling |"
)
NOIDX_HEADER = "| stones (listed) | indexes dropped | ceiling rows/s | priced write rows/s | + history rows/s |"


def main_row(r: dict[str, Any]) -> str:
    facts, job, top = r["facts"], r["job"], r["ceiling"]
    per_k = 1000 / facts["stones"]
    return (
        f"| {facts['stones']:,} ({facts['listed']:,}) | {r['preview']['cold']:.2f} ({r['preview']['warm']:.2f})"
        f" | {job['wall']:.1f} | {job['rate']:,.0f} | {top['rate']:,.0f} | {job['rate'] / top['rate']:.0%}"
        f" | {r['priced']['rate']:,.0f} ({rate(r, 'priced_again')}) | {r['history']['rate']:,.0f}"
        f" | {rate(r, 'locked')}"
        f" | {job['wal_mb'] * per_k:.2f} / {top['wal_mb'] * per_k:.2f} |"
    )


def rate(r: dict[str, Any], phase: str) -> str:
    return f"{r[phase]['rate']:,.0f}" if phase in r else "-"


def noidx_row(r: dict[str, Any]) -> str | None:
    if "ceiling_noidx" not in r:
        return None
    return (
        f"| {r['facts']['stones']:,} ({r['facts']['listed']:,}) | {r['dropped']} of {r['facts']['index_count']}"
        f" | {r['ceiling_noidx']['rate']:,.0f} | {r['priced_noidx']['rate']:,.0f} | {r['history_noidx']['rate']:,.0f} |"
    )


def verdicts(r: dict[str, Any]) -> str:
    job, ratio = r["job"], r["job"]["rate"] / r["ceiling"]["rate"]
    million = 1_000_000 / job["rate"]
    lines = [
        "| target | measured | verdict |",
        "|---|---|---|",
        f"| preview under 5 s | {r['preview']['cold']:.2f} s at {r['facts']['listed']:,} listed stones"
        f" | {'met' if r['preview']['cold'] < 5 else 'missed'} |",
        f"| repricing >= 50% of the plain UPDATE ceiling | {ratio:.0%}"
        f" ({job['rate']:,.0f} / {r['ceiling']['rate']:,.0f})"
        f" | {'met' if ratio >= 0.5 else 'missed'} |",
        f"| 1M stones in under 2 minutes | {job['wall']:.1f} s for {job['stones']:,} stones"
        + (f" ({million:.0f} s per 1M at this rate)" if job["stones"] < 900_000 else "")
        + f" | {('met' if million < 120 else 'missed') if job['stones'] >= 900_000 else 'not measured at 1M'} |",
    ]
    return "\n".join(lines)


def previous_rows(header: str) -> list[str]:
    """Rows of the table under `header` already in the README's section (other inventory sizes)."""
    content = README.read_text()
    start, end = f"<!-- {SECTION}:start -->", f"<!-- {SECTION}:end -->"
    if start not in content:
        return []
    section = content.partition(start)[2].partition(end)[0]
    if header not in section:
        return []
    rows = []
    for line in section.partition(header)[2].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def merged(header: str, row: str) -> list[str]:
    def size(line: str) -> int:
        found = re.match(r"\|\s*([\d,]+)", line)
        return int(found.group(1).replace(",", "")) if found else 0

    rows = [line for line in previous_rows(header) if size(line) != size(row)] + [row]
    return sorted(rows, key=size)


def report(r: dict[str, Any], args: argparse.Namespace) -> str:
    facts, job = r["facts"], r["job"]
    main = [MAIN_HEADER, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *merged(MAIN_HEADER, main_row(r))]
    parts = ["\n".join(main)]
    noidx = noidx_row(r)
    previous_noidx = previous_rows(NOIDX_HEADER)
    if noidx or previous_noidx:
        rows = merged(NOIDX_HEADER, noidx) if noidx else previous_noidx
        parts.append("\n".join([NOIDX_HEADER, "|---:|---:|---:|---:|---:|", *rows]))
    parts.append(f"Latest run ({facts['stones']:,} stones):\n\n" + verdicts(r))
    parts.append(
        f"Latest run: the draft is version {r['old']}'s {facts['rules']} rules, every markup +{args.markup_points}"
        f" points, charm rounding to x.99 dollars; the preview finds {r['preview']['changed']:,} of"
        f" {r['preview']['stones']:,} listed prices changing. The job ran through the `pricing_reprice`"
        f" orchestration on the local host (LocalRuntime, 2 activity workers), batches of {args.batch_size:,},"
        f" slices of {args.slice_seconds:g} s: {job['batches']} batches, {job['repriced']:,} prices changed;"
        f" {job['inside']:.1f} s between the job's started_at and finished_at."
        + (
            f" Before the job, a first ceiling pass over the freshly built table (which it must extend by a new"
            f" version of every row) ran at {r['warm_up']['rate']:,.0f} rows/s; it is there so that every phase in"
            " the table above runs on a table whose last rewrite was VACUUMed."
            if "warm_up" in r
            else " No warm-up pass: the job was the first rewrite of the freshly built table."
        )
        + " Ceiling, priced write and + history"
        " run over the same key ranges, one transaction per batch, on the host's pool; each phase starts from a"
        " VACUUMed table after a CHECKPOINT. Priced write: the job's five columns priced by `price_of`, no row"
        " locks, checks or checkpoint; + history: with the job's price_history rows too; + row locks: and the batch's"
        " rows taken FOR UPDATE SKIP LOCKED as the job takes them. The job adds to that its checks, its job row"
        " lock and checkpoint, the dataset_version lock and the orchestration. Catalogue: diamonds"
        f" {facts['table']} + {facts['indexes']} of {facts['index_count']} indexes; shared_buffers"
        f" {facts['shared_buffers']}. The machine is shared: load average {r['load_before']:.1f} (1 min) before the"
        f" phases, {r['load_after']:.1f} (5 min) after them."
    )
    parts.append(
        f"Machine: {machine()}. PostgreSQL 16 embedded (pgserver), default settings; catalogue built by a full sync"
        " from the feed emulator (bench/api_catalogue.py)."
    )
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="stones to build (default 100,000)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database", help="reuse a database that holds a built catalogue")
    where.add_argument("--keep", help="build into an embedded PostgreSQL kept in this folder, or reuse it")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--slice-seconds", type=float, default=DEFAULT_SLICE_SECONDS)
    parser.add_argument("--markup-points", default="3", help="added to every markup percent of the draft")
    parser.add_argument("--drop-indexes", action="store_true", help="also measure without secondary indexes")
    parser.add_argument(
        "--no-warm-up", action="store_true", help="no unmeasured-in-the-ratio ceiling pass before the job"
    )
    parser.add_argument("--no-locks", action="store_true", help="skip the row-lock step (and the second priced write)")
    parser.add_argument("--write", action="store_true", help="update bench/README.md")
    args = parser.parse_args()
    with catalogue(args) as database:
        results = run(database, args)
    text = report(results, args)
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
