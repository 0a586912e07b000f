"""Benchmark of the search API: latency and throughput under 50 clients, the SQL floor, the plans.

    .venv/bin/python bench/bench_api.py [--size 1000000] [--keep DIR | --database URL] [--write]

On a catalogue built by the real main job (the feed emulator in its own process, a full sync of both
feeds, then VACUUM ANALYZE; about 8 minutes at 1M stones, so --keep DIR keeps it for the next run),
this measures:
- the search mix: eleven requests a storefront sends, each freshly signed, replayed by autocannon
  over 50 connections against `caratflow serve` as 1 process and as `--workers 2`: requests/s and
  p50/p95/p99 latency, overall and per request kind;
- revalidations: the same requests with `If-None-Match` on the current ETag, all answered 304;
- during each run: CPU of the server, PostgreSQL, autocannon and the rest of the machine; what the
  API's database sessions do (pg_stat_activity); how the connections spread over the workers;
- the SQL floor: the statements those requests run (built by shared/catalogue/search.py), through
  psycopg on one connection, sequentially, per statement p50/p95/p99;
- where the server's CPU goes for a 304 and for a search (py-spy, when installed in the venv);
- bench/explain.md: EXPLAIN (ANALYZE, BUFFERS) of every sort key in both directions under
  representative filters, the count statements, and which index served each.
Every response is checked: a status other than the expected 200 or 304 is counted and reported.
The whole run takes about 6 minutes on a built catalogue (plus the build).

Each job has a module beside this file: api_catalogue (the catalogue and its database), api_mix (the
requests and their page statements), api_load (key, server, signed requests, autocannon, load runs),
api_sampling (CPU, database sessions and connections during a run), api_floor (the SQL floor),
api_explain (bench/explain.md), api_profile (py-spy), api_report (the tables).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "bench"))

import httpx  # noqa: E402
from api_catalogue import catalogue, database_facts, listed_stones  # noqa: E402
from api_explain import explain_catalogue  # noqa: E402
from api_floor import sql_floor  # noqa: E402
from api_load import WARMUP_SECONDS, BenchKey, Setup, api_server, ensure_autocannon, issue_key, load_run  # noqa: E402
from api_mix import Probe, storefront_mix  # noqa: E402
from api_profile import profile_server  # noqa: E402
from api_report import Runs, ms, report  # noqa: E402
from api_sampling import host_speed, postmaster  # noqa: E402
from common import progress, write_section  # noqa: E402

from caratflow_client.signing import sign_request  # noqa: E402

EXPLAIN_MD = PROJECT / "bench" / "explain.md"


def current_etag(base: str, probe: Probe, key: BenchKey) -> str:
    """One signed search: the ETag the revalidations send back (and a check that signing works)."""
    path, query = probe.variants[0].path, probe.variants[0].query
    signature = sign_request(key_id=key.key_id, secret=key.secret, method="GET", path=path, query=query)
    response = httpx.get(f"{base}{path}?{query}", headers={"Authorization": signature.header()}, timeout=30)
    if response.status_code != 200:
        raise SystemExit(f"a signed search failed: {response.status_code} {response.text[:500]}")
    return response.headers["etag"]


def measure_uncached(setup: Setup) -> Runs:
    """The search mix against one process whose answer cache is off: every search reaches PostgreSQL."""
    with api_server(setup.database, setup.folder, 1, answer_cache=False) as (base, server):
        progress(f"1 worker, search with the answer cache off: {WARMUP_SECONDS} s warm-up + {setup.seconds:.0f} s...")
        run = load_run(setup, base, server, None)
        progress(f"  {run['rps']:,.0f} req/s, p50/p95/p99 {ms(run['latency'])} ms, {run['statuses']}")
    return {(1, "search-uncached"): run}


def measure_server(setup: Setup, workers: int) -> tuple[Runs, dict[str, Any]]:
    """The search mix and the revalidations against one server configuration; profiles with 1 process."""
    runs: Runs = {}
    profiles: dict[str, Any] = {}
    with api_server(setup.database, setup.folder, workers) as (base, server):
        etag = current_etag(base, setup.probes[0], setup.key)
        for kind, tag in (("search", None), ("304", etag)):
            progress(f"{workers} worker(s), {kind}: {WARMUP_SECONDS} s warm-up + {setup.seconds:.0f} s...")
            run = runs[(workers, kind)] = load_run(setup, base, server, tag)
            progress(f"  {run['rps']:,.0f} req/s, p50/p95/p99 {ms(run['latency'])} ms, {run['statuses']}")
        if workers == 1:
            for kind, tag in (("304", etag), ("search", None)):
                progress(f"profiling the server under the {kind} load (py-spy)...")
                profiles[kind] = profile_server(setup, base, server, tag)
    return runs, profiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="stones to build (default 1,000,000)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database", help="reuse a database that holds a built catalogue")
    where.add_argument("--keep", help="build into an embedded PostgreSQL kept in this folder, or reuse it")
    parser.add_argument("--seconds", type=float, default=30, help="measured seconds per load figure")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="server configurations")
    parser.add_argument("--floor-iterations", type=int, default=200)
    parser.add_argument("--write", action="store_true", help="update bench/README.md and bench/explain.md")
    args = parser.parse_args()

    started = time.perf_counter()
    ensure_autocannon()
    with catalogue(args) as database, tempfile.TemporaryDirectory(prefix="caratflow-bench-api-") as temp:
        folder = Path(temp)
        stones = listed_stones(database)
        progress("explaining the page and count statements...")
        explained = explain_catalogue(database, stones)
        probes = storefront_mix(database)
        key = issue_key(database, folder / "secrets.json")
        progress("SQL floor...")
        floor = sql_floor(database, probes, key, args.floor_iterations)
        facts = database_facts(database)
        progress("timing a fixed loop to see how steady this machine is...")
        facts["speed"] = host_speed()
        setup = Setup(database, postmaster(database), probes, key, args.connections, args.seconds, folder)
        runs, profiles = {}, {}
        for workers in args.workers:
            measured, profiled = measure_server(setup, workers)
            runs.update(measured)
            profiles.update(profiled)
        runs.update(measure_uncached(setup))
    text = report(probes, runs, floor, profiles, args, facts)
    print(text)
    if args.write:
        write_section("bench_api", text)
        EXPLAIN_MD.write_text(explained)
        progress(f"wrote {EXPLAIN_MD.relative_to(PROJECT)} and the bench_api section of bench/README.md")
    progress(f"the bench took {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
