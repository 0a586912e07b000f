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
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "bench"))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
from bench_sync import full_sync, settings_for  # noqa: E402
from common import emulator_process, machine, serve_process, throwaway_database, write_section  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from caratflow_client.signing import sign_request  # noqa: E402
from local_host.runtime import LocalRuntime  # noqa: E402
from shared.access import gate, server_keys  # noqa: E402
from shared.access.keys import create_key  # noqa: E402
from shared.catalogue import cursor as cursors  # noqa: E402
from shared.catalogue import search  # noqa: E402
from shared.catalogue.query import SORT_COLUMNS, DiamondSearch  # noqa: E402
from shared.config import Settings, load_settings  # noqa: E402
from shared.db import embedded  # noqa: E402
from shared.db.connect import open_pool  # noqa: E402
from shared.db.migrate import migrate  # noqa: E402
from shared.secrets import open_secret_store  # noqa: E402

# autocannon lives in a prefix of its own: `npm install --prefix .tools <pkg>` rewrites .tools as a
# project holding only <pkg>, which would remove the Azurite that dev.py installs there.
AUTOCANNON = "autocannon@8.0.0"
AUTOCANNON_PREFIX = PROJECT / ".tools" / "autocannon"
REPLAY_JS = PROJECT / "bench" / "load" / "replay.js"
EXPLAIN_MD = PROJECT / "bench" / "explain.md"
PAGE = 50  # the API's default page size, which the mix uses
# Raised so that the bench client is never refused; every request still runs the full GCRA update.
RATE_PER_MINUTE = 6_000_000
BURST = 100_000
WARMUP_SECONDS = 5
# The measured time is split into parts, each replayed on fresh connections: the spread of their
# requests/s shows how steady the machine was (this VM's speed varies from second to second).
SEGMENTS = 3


# --- the catalogue ---------------------------------------------------------------------------------


def build_catalogue(database: str, size: int) -> None:
    """The real main job: the emulator in its own process, a full sync of both feeds (as bench_sync)."""
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as folder,
        emulator_process(size, 7, "--short-page-rate", "0") as (url, _),
    ):
        settings = settings_for(database, url, Path(folder), plan_target_partition_size=max(1000, size // 100))
        progress(f"full sync of {size:,} stones (both feeds, emulator in its own process)...")
        with LocalRuntime(settings, activity_workers=6) as runtime:
            result = full_sync(runtime)
    progress(f"synced {result['stones']:,} stones in {result['wall']:.0f} s; VACUUM ANALYZE...")
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    progress(f"catalogue built in {time.perf_counter() - started:.0f} s")


def listed_stones(database: str) -> int:
    with psycopg.connect(database) as conn:
        (count,) = conn.execute("SELECT count(*) FROM diamonds WHERE delisted_at IS NULL").fetchone()
    return count


@contextmanager
def catalogue(args: argparse.Namespace) -> Iterator[str]:
    """A database holding the catalogue: given (--database), kept between runs (--keep), or throwaway."""
    if args.database:
        with psycopg.connect(args.database) as conn:
            migrate(conn)
        progress(f"reusing the catalogue at --database ({listed_stones(args.database):,} listed stones)")
        yield args.database
        return
    if args.keep:
        folder = Path(args.keep).resolve()
        database = embedded.start(folder)
        try:
            with psycopg.connect(database) as conn:
                migrate(conn)
            stones = listed_stones(database)
            if stones == 0:
                build_catalogue(database, args.size)
            elif abs(stones - args.size) > args.size // 100:
                raise SystemExit(f"{folder} holds {stones:,} stones, not --size {args.size:,}: use another folder")
            else:
                progress(f"reusing the catalogue kept in {folder} ({stones:,} listed stones)")
            progress(f"kept: run again with --keep {folder} (or --database '{database}' while it runs)")
            yield database
        finally:
            embedded.stop(folder)
        return
    progress("building into a throwaway database; --keep DIR keeps the catalogue for the next run")
    with throwaway_database() as database:
        build_catalogue(database, args.size)
        yield database


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


# --- the query mix ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One concrete request: its URL, and the search it runs (None: one stone by id)."""

    path: str
    query: str  # the raw query string, as sent and signed
    search: DiamondSearch | None = None
    after: cursors.Position | None = None
    diamond_id: Any = None


@dataclass(frozen=True)
class Probe:
    """One kind of request a storefront sends, its share of the mix, and the variants it cycles through."""

    name: str
    weight: int
    variants: tuple[Variant, ...] = field(repr=False)


def query_string(params: dict[str, Any]) -> str:
    """As a browser would send it: lists as repeated names, booleans lower case, spaces as %20."""
    pairs = []
    for name, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((name, str(item).lower() if isinstance(item, bool) else str(item)))
    return urlencode(pairs, quote_via=quote)


def search_variant(params: dict[str, Any], keys: server_keys.ServerKeys | None = None) -> Variant:
    query = DiamondSearch(**params)
    after = cursors.decode(query, query.cursor, keys) if query.cursor and keys else None
    return Variant("/api/v1/diamonds", query_string(params), query, after)


def search_probe(name: str, weight: int, **params: Any) -> Probe:
    return Probe(name, weight, (search_variant(params),))


def second_page(conn: psycopg.Connection, name: str, weight: int, **params: Any) -> Probe:
    """Page 2 of a search, through the cursor the API would hand out with page 1 (same encoder)."""
    first = DiamondSearch(**params)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(*page_statement(cur, first)).fetchall()
    if len(rows) <= PAGE:
        raise SystemExit(f"{name}: the catalogue has no second page for {params}; is it too small?")
    last = rows[PAGE - 1]
    keys = server_keys.load(conn)
    cursor = cursors.encode(first, last["sort_value"], last["diamond_id"], keys)
    return Probe(name, weight, (search_variant({**params, "cursor": cursor}, keys),))


def price_slider(conn: psycopg.Connection, name: str, weight: int, count: int = 20_000) -> Probe:
    """Rounds in a price range that differs from request to request, as a storefront's slider sends them.

    The API caches a search's count per filter set; a fresh range is a cache miss, so this probe pays
    the count statement on every request, as varied real traffic does.
    """
    (prices,) = conn.execute(
        "SELECT percentile_disc((SELECT array_agg(p / 100.0) FROM generate_series(20, 80) AS p)) "
        "WITHIN GROUP (ORDER BY price_cents) FROM diamonds WHERE shape = 'ROUND' AND delisted_at IS NULL"
    ).fetchone()
    rng, ranges = random.Random(11), set()
    while len(ranges) < count:
        low = rng.choice(prices) // 100 * 100  # whole dollars, as a slider sends them
        ranges.add((low, int(low * rng.uniform(1.5, 3)) // 100 * 100))
    variants = [
        search_variant({"shape": ["ROUND"], "price_cents_min": low, "price_cents_max": high, "sort": "price_cents"})
        for low, high in sorted(ranges)
    ]
    rng.shuffle(variants)
    return Probe(name, weight, tuple(variants))


def by_id_probe(conn: psycopg.Connection, name: str, weight: int, count: int = 1000) -> Probe:
    """One stone by id, cycling through listed stones drawn at random (not one hot row)."""
    ids = conn.execute(
        "SELECT diamond_id FROM diamonds WHERE delisted_at IS NULL ORDER BY random() LIMIT %s", (count,)
    ).fetchall()
    return Probe(name, weight, tuple(Variant(f"/api/v1/diamonds/{i}", "", diamond_id=i) for (i,) in ids))


# The storefront's main search (the mix's heaviest share) and the explained filter sets built on it.
ROUND_1CT_GRADES: dict[str, Any] = {
    "shape": ["ROUND"],
    "carats_min": "1.00",
    "carats_max": "1.50",
    "color": ["G", "H"],
    "clarity": ["VS1", "VS2"],
}


def storefront_mix(database: str) -> list[Probe]:
    """Eleven requests a storefront sends, with values taken from the built catalogue."""
    with psycopg.connect(database) as conn:
        (fancy_color,) = conn.execute(
            "SELECT fancy_color FROM diamonds WHERE fancy_color IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        # "Expensive": the top 5% of natural rounds of 2-3 ct.
        (expensive,) = conn.execute(
            "SELECT percentile_disc(0.95) WITHIN GROUP (ORDER BY price_cents) FROM diamonds "
            "WHERE shape = 'ROUND' AND NOT lab_grown AND carats BETWEEN 2 AND 3"
        ).fetchone()
        round_1ct = {**ROUND_1CT_GRADES, "cut": ["EXCELLENT"], "sort": "price_cents"}
        return [
            search_probe("round 1-1.5 ct G-H VS excellent, by price", 3, **round_1ct),
            second_page(conn, "the same, page 2 (cursor)", 2, **round_1ct),
            search_probe("the same, fields=full", 1, **round_1ct, fields="full"),
            search_probe("oval, by price descending", 2, shape=["OVAL"], sort="-price_cents"),
            search_probe(
                "lab-grown >= 2 ct, by price per carat",
                2,
                lab_grown=True,
                carats_min="2.00",
                sort="price_per_carat_cents",
            ),
            search_probe(f"fancy {fancy_color.lower()}, by price", 1, fancy=True, fancy_color=[fancy_color]),
            search_probe("no filters, newest first", 2, sort="-listed_at"),
            search_probe(
                "white GIA 0.9-1.1 ct, by colour",
                1,
                fancy=False,
                lab=["GIA"],
                carats_min="0.90",
                carats_max="1.10",
                sort="color",
            ),
            search_probe(
                "natural round 2-3 ct D-F IF-VVS2 top 5% price, by price descending",
                1,
                shape=["ROUND"],
                lab_grown=False,
                carats_min="2.00",
                carats_max="3.00",
                color=["D", "E", "F"],
                clarity=["IF", "VVS1", "VVS2"],
                price_cents_min=expensive,
                sort="-price_cents",
            ),
            price_slider(conn, "round in a price range that changes per request (count not cached)", 2),
            by_id_probe(conn, "one stone by id", 2),
        ]


# --- signed requests, the server, the load tool ----------------------------------------------------


@dataclass(frozen=True)
class BenchKey:
    key_id: str
    secret: str
    client_id: str


def issue_key(database: str, secrets_path: Path) -> BenchKey:
    """A search key for the bench client, its secret in a local store only this run's server reads."""
    settings = settings_for_api(database, secrets_path)
    with open_pool(settings, url=database, name="bench-keys") as pool:
        issued = create_key(pool, open_secret_store(settings), "bench", ["search"])
    return BenchKey(issued.key_id, issued.secret, issued.client_id)


def settings_for_api(database: str, secrets_path: Path) -> Settings:
    return load_settings(database_url=database, secret_store="local", local_secrets_path=secrets_path)


# Which variant each probe sends next. It carries on from run to run, so that a probe whose requests
# vary (the price slider) does not repeat in the measured run what the warm-up already cached.
_TURNS: Counter[str] = Counter()


def signed_requests(probes: list[Probe], key: BenchKey, count: int, seed: int, etag: str | None) -> list[list]:
    """`count` requests drawn from the weighted mix, each signed now with its own nonce.

    The API refuses a reused nonce (401) and a timestamp more than 300 s off, so each run replays a
    list signed just before it, every entry exactly once.
    """
    rng = random.Random(seed)
    deck = [probe for probe in probes for _ in range(probe.weight)]
    items = []
    for _ in range(count):
        probe = rng.choice(deck)
        variant = probe.variants[_TURNS[probe.name] % len(probe.variants)]
        _TURNS[probe.name] += 1
        signature = sign_request(
            key_id=key.key_id, secret=key.secret, method="GET", path=variant.path, query=variant.query
        )
        headers = {"Authorization": signature.header()}
        if etag:
            headers["If-None-Match"] = etag
        items.append([probe.name, f"{variant.path}?{variant.query}" if variant.query else variant.path, headers])
    return items


@contextmanager
def api_server(
    database: str, folder: Path, workers: int, *, answer_cache: bool = True
) -> Iterator[tuple[str, psutil.Process]]:
    """`caratflow serve` as a deployment runs it, settings from the environment; yields its base URL."""
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "SECRET_STORE": "local",
        "LOCAL_SECRETS_PATH": str(folder / "secrets.json"),
        "API_SEARCH_RATE_PER_MINUTE": str(RATE_PER_MINUTE),
        "API_SEARCH_BURST": str(BURST),
        # No local.settings.json from a developer's checkout: defaults plus the lines above.
        "CARATFLOW_LOCAL_SETTINGS": str(folder / "no-local-settings.json"),
        **({} if answer_cache else {"API_ANSWER_CACHE_MB": "0"}),
    }
    log_path = folder / f"serve-{workers}{'' if answer_cache else '-uncached'}.log"
    options = ("--workers", str(workers), "--drain-seconds", "0", "--no-local-host")
    with serve_process(env, log_path, *options) as (base, server):
        yield base, psutil.Process(server.pid)


def ensure_autocannon() -> Path:
    module = AUTOCANNON_PREFIX / "node_modules" / "autocannon"
    if not module.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed for the load generator (autocannon)")
        AUTOCANNON_PREFIX.mkdir(parents=True, exist_ok=True)
        progress(f"installing {AUTOCANNON} into {AUTOCANNON_PREFIX}")
        subprocess.run(
            [npm, "install", "--prefix", AUTOCANNON_PREFIX, "--no-audit", "--no-fund", "--loglevel=error", AUTOCANNON],
            check=True,
            cwd=PROJECT,
        )
    return module


def replay(base: str, items: list[list], seconds: float, connections: int, folder: Path) -> dict:
    """autocannon replays `items` (each once) for `seconds`; returns latencies and statuses by probe."""
    requests_path, output_path, config_path = (folder / name for name in ("requests.json", "out.json", "run.json"))
    requests_path.write_text(json.dumps(items))
    config = {
        "autocannon": str(ensure_autocannon()),
        "url": base,
        "connections": connections,
        "duration": seconds,
        "requests": str(requests_path),
        "output": str(output_path),
    }
    config_path.write_text(json.dumps(config))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["node", str(REPLAY_JS), str(config_path)], check=True, cwd=PROJECT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(output_path.read_text())
    result["load_cpu"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result


# --- CPU by process group --------------------------------------------------------------------------


def postmaster(database: str) -> psutil.Process | None:
    """The PostgreSQL server process of this database, when it runs on this machine."""
    with psycopg.connect(database) as conn:
        (backend,) = conn.execute("SELECT pg_backend_pid()").fetchone()
        try:
            return psutil.Process(backend).parent()  # while this backend still runs
        except psutil.Error:
            return None


def machine_busy() -> float:
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq


def cpu_snapshot(server: psutil.Process, database: psutil.Process | None) -> dict[str, Any]:
    """CPU seconds (user, system) so far of the server's processes and of the database's, and of the machine."""
    groups: dict[str, Any] = {"server": {}, "postgres": {}, "machine": machine_busy()}
    for group, root in (("server", server), ("postgres", database)):
        try:
            members = [root, *root.children(recursive=True)] if root else []
        except psutil.Error:
            members = []
        for process in members:
            try:
                times = process.cpu_times()
                groups[group][(process.pid, process.create_time())] = (times.user, times.system)
            except psutil.Error:
                continue  # ended meanwhile
    return groups


def cpu_used(before: dict, after: dict, load: float) -> dict[str, float]:
    """CPU seconds per group between two snapshots, the system (kernel) part of each as `<group>_sys`,
    the load tool's (measured by the caller), and the rest of the machine's as `other`."""
    used = {"load": load}
    for group in ("server", "postgres"):
        user = system = 0.0
        for key, (u, s) in after[group].items():
            u0, s0 = before[group].get(key, (0.0, 0.0))
            user, system = user + u - u0, system + s - s0
        used[group], used[f"{group}_sys"] = user + system, system
    used["other"] = max(0.0, after["machine"] - before["machine"] - used["server"] - used["postgres"] - load)
    return used


def host_speed(samples: int = 15) -> tuple[float, float, float]:
    """A fixed pure-Python loop, timed `samples` times half a second apart: min, median, max in ms.

    On a shared VM the same work takes a varying time; this puts the spread of the load figures in
    context.
    """
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        for i in range(200_000):
            hashlib.sha256(str(i).encode()).digest()
        timings.append((time.perf_counter() - started) * 1000)
        time.sleep(0.5)
    return min(timings), float(np.median(timings)), max(timings)


def wait_for_quiet(limit: float = 0.15, patience: float = 600) -> None:
    """Measure on a quiet machine: wait (up to `patience` s) until other work uses under `limit` of it."""
    deadline = time.monotonic() + patience
    while (busy := psutil.cpu_percent(interval=3) / 100) > limit:
        if time.monotonic() > deadline:
            progress(f"the machine is still {busy:.0%} busy with other work; measuring anyway (see 'other')")
            return
        progress(f"the machine is {busy:.0%} busy with other work; waiting")


def connections_per_process(server: psutil.Process, port: int) -> list[int]:
    """Established client connections each serving process holds (with --workers, each worker's).

    Workers accept from one shared socket; which one takes a connection is the kernel's choice, and
    a keep-alive connection stays with that worker for the whole run.
    """
    held: dict[psutil.Process, int] = {}
    for process in [server, *server.children(recursive=True)]:
        try:
            sockets = [c for c in process.net_connections("tcp") if c.laddr and c.laddr.port == port]
        except psutil.Error:
            continue
        if any(c.status == "LISTEN" for c in sockets):
            held[process] = sum(c.status == "ESTABLISHED" for c in sockets)
    if len(held) > 1:
        held.pop(server, None)  # the supervisor holds the socket but serves nothing
    return sorted(held.values(), reverse=True)


class SessionSampler:
    """What the API's PostgreSQL sessions do during a run, sampled from pg_stat_activity every 20 ms.

    A session that is idle waits for the server's next statement; one that is active runs (or waits
    inside PostgreSQL, e.g. on a lock). Which of the two dominates says where the time goes.
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self.samples: list[list[tuple]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SessionSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with psycopg.connect(self.database, autocommit=True) as conn:
            while not self._stop.wait(0.02):
                self.samples.append(
                    conn.execute(
                        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                        "WHERE application_name = 'caratflow-api'"
                    ).fetchall()
                )

    @staticmethod
    def summary(samples: list[list[tuple]]) -> dict[str, Any]:
        n = len(samples) or 1
        states: Counter[str] = Counter()
        waits: Counter[str] = Counter()
        for sample in samples:
            for state, wait_type, wait in sample:
                if state == "active" and wait_type is None:
                    states["running"] += 1
                elif state == "active":
                    states["waiting"] += 1
                    waits[f"{wait_type}:{wait}"] += 1
                else:
                    states["idle"] += 1
        return {
            "sessions": sum(len(sample) for sample in samples) / n,
            **{state: states[state] / n for state in ("running", "waiting", "idle")},
            "waits": {wait: count / n for wait, count in waits.most_common(3)},
        }


# --- load runs ---------------------------------------------------------------------------------------


def percentiles(values: list[float] | np.ndarray) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(np.asarray(values, dtype=float), [50, 95, 99])
    return float(p50), float(p95), float(p99)


@dataclass(frozen=True)
class Setup:
    """What every load run needs."""

    database: str
    postgres: psutil.Process | None  # the database's server process, for its CPU
    probes: list[Probe]
    key: BenchKey
    connections: int
    seconds: float
    folder: Path


def load_run(setup: Setup, base: str, server: psutil.Process, etag: str | None) -> dict:
    """A warm-up, then the measured run in SEGMENTS parts: requests/s, latency, statuses, CPU by process."""
    wait_for_quiet()
    # The warm-up primes the server (pools, key and count caches) and tells how many requests to sign.
    warm_up = signed_requests(setup.probes, setup.key, WARMUP_SECONDS * 4000, 1, etag)
    warm = replay(base, warm_up, WARMUP_SECONDS, setup.connections, setup.folder)
    rate = warm["used"] / warm["seconds"]
    segments = [segment(setup, base, server, etag, rate, seed) for seed in range(2, 2 + SEGMENTS)]
    return summarise(segments, expected=304 if etag else 200)


def segment(setup: Setup, base: str, server: psutil.Process, etag: str | None, rate: float, seed: int) -> dict:
    """One measured part: requests signed just before it (twice the warm-up's rate, so none is replayed)."""
    seconds = setup.seconds / SEGMENTS
    items = signed_requests(setup.probes, setup.key, int(rate * seconds * 2) + 2000, seed, etag)
    split: list[int] = []
    port = int(base.rsplit(":", 1)[1])
    halfway = threading.Timer(seconds / 2, lambda: split.extend(connections_per_process(server, port)))
    with SessionSampler(setup.database) as sessions:
        before, started = cpu_snapshot(server, setup.postgres), time.perf_counter()
        halfway.start()
        result = replay(base, items, seconds, setup.connections, setup.folder)
        wall = time.perf_counter() - started
        cpu = cpu_used(before, cpu_snapshot(server, setup.postgres), result["load_cpu"])
    halfway.join()
    if result["exhausted"]:
        raise SystemExit(f"ran out of pre-signed requests after {result['used']:,}; the run would replay nonces")
    return {**result, "cpu": cpu, "wall": wall, "samples": sessions.samples, "split": split}


def summarise(segments: list[dict], *, expected: int) -> dict:
    """The segments as one run: latencies pooled, requests/s overall and per segment, CPU shares."""
    latencies: dict[str, list[float]] = {}
    statuses: Counter[str] = Counter()
    for part in segments:
        for tag, values in part["latencies"].items():
            latencies.setdefault(tag, []).extend(values)
        for seen in part["statuses"].values():
            statuses.update(seen)
    everything = [value for values in latencies.values() for value in values]
    failures = sum(part["errors"] + part["timeouts"] for part in segments)
    wall = sum(part["wall"] for part in segments) * (os.cpu_count() or 1)
    return {
        "responses": len(everything),
        "rps": len(everything) / sum(part["seconds"] for part in segments),
        "rps_parts": [sum(map(len, part["latencies"].values())) / part["seconds"] for part in segments],
        "latency": percentiles(everything),
        "statuses": dict(statuses),
        "unexpected": sum(n for status, n in statuses.items() if int(status) != expected) + failures,
        "by_probe": {tag: percentiles(values) for tag, values in latencies.items()},
        "cpu": {group: sum(part["cpu"][group] for part in segments) / wall for group in segments[0]["cpu"]},
        "sessions": SessionSampler.summary([sample for part in segments for sample in part["samples"]]),
        "splits": [part["split"] for part in segments],
    }


# --- the SQL floor -----------------------------------------------------------------------------------


def timed(cur: psycopg.Cursor, statement: Any, params: Any) -> float:
    started = time.perf_counter()
    cur.execute(statement, params)
    cur.fetchall()
    return (time.perf_counter() - started) * 1000


def expected_rows(cur: psycopg.Cursor, query: DiamondSearch) -> int:
    """The planner's estimate of the matches, which the API uses to choose the page statement's form."""
    statement, params = search.estimated_count(query)
    with cur.connection.cursor() as plain:  # a tuple row, whatever row factory `cur` has
        (plan,) = plain.execute(statement, params).fetchone()
    return search.plan_rows(plan)


def page_statement(cur: psycopg.Cursor, query: DiamondSearch, after: Any = None) -> tuple[Any, Any]:
    """The page statement exactly as the API builds it on an answer-cache miss."""
    return search.page(query, PAGE, after, expected_rows(cur, query))


def count_ms(cur: psycopg.Cursor, query: DiamondSearch, cap: int) -> float:
    """What the API's count costs on a cache miss: the estimate, then the capped count unless trusted."""
    started = time.perf_counter()
    if search.count_needed(expected_rows(cur, query), cap):
        statement, params = search.capped_count(query, cap)
        cur.execute(statement, params).fetchone()
    return (time.perf_counter() - started) * 1000


def sql_floor(database: str, probes: list[Probe], key: BenchKey, iterations: int) -> dict[str, dict]:
    """Each probe's statements through psycopg: one connection, sequential, `iterations` timings each."""
    settings = settings_for_api(database, Path("unused"))
    cap = settings.api_count_cap
    floor: dict[str, dict] = {}
    # Autocommit and psycopg's automatic prepare after 5 runs, like the API's pooled connections.
    with psycopg.connect(database, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
        for probe in probes:
            variants = [probe.variants[i % len(probe.variants)] for i in range(iterations + 10)]
            if variants[0].search is None:
                runs = [timed(cur, search.by_id(), (v.diamond_id,)) for v in variants]
                floor[probe.name] = {"page": percentiles(runs[10:])}
                continue
            runs = [timed(cur, *page_statement(cur, v.search, v.after)) for v in variants]
            counts = [count_ms(cur, v.search, cap) for v in variants[: max(iterations // 4, 20) + 2]]
            floor[probe.name] = {"page": percentiles(runs[10:]), "count": percentiles(counts[2:])}
        floor["gate"] = {"page": gate_floor(cur, key, settings, iterations * 2)}
    return floor


def gate_floor(cur: psycopg.Cursor, key: BenchKey, settings: Settings, iterations: int) -> tuple[float, ...]:
    """caratflow_api_gate, the one round trip of every signed request (a 304 included), as the API calls it."""
    budget = gate.request_budget("search", key.client_id, RATE_PER_MINUTE, BURST)
    runs = []
    for i in range(iterations + 10):
        params = (
            key.key_id,
            f"bench-floor-{time.time_ns()}-{i}",
            datetime.now(UTC) + timedelta(seconds=300),
            budget.name,
            budget.interval,
            budget.burst,
        )
        runs.append(timed(cur, gate.GATE_SQL, params))
    return percentiles(runs[10:])


# --- plans (bench/explain.md) -----------------------------------------------------------------------

EXPLAIN_FILTERS: dict[str, dict[str, Any]] = {
    "none": {},
    "shape": {"shape": ["ROUND"]},
    "shape+carats+color+clarity": ROUND_1CT_GRADES,
    "shape+carats+color+clarity+cut": {**ROUND_1CT_GRADES, "cut": ["EXCELLENT"]},
    "lab_grown+carats": {"lab_grown": True, "carats_min": "2.00"},
    "fancy=false+lab+carats": {"fancy": False, "lab": ["GIA"], "carats_min": "0.90", "carats_max": "1.10"},
    "fancy": {"fancy": True},
    "price range": {"price_cents_min": 100_000, "price_cents_max": 200_000},
    "include_delisted": {"include_delisted": True},
}
SORTS = [key for column in SORT_COLUMNS for key in (column, f"-{column}")]
# Wrapper nodes that sit above the node doing the work; the plan's "top" reads through them.
_WRAPPERS = {"Limit", "Sort", "Incremental Sort", "Gather", "Gather Merge", "Aggregate", "Subquery Scan", "Result"}
BIG = 10_000  # rows: a sort or a discarding filter above this is flagged


def explain(cur: psycopg.Cursor, statement: sql.Composable, params: dict) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON), second run (the first warms the caches the API would have warm)."""
    wrapped = sql.SQL("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}").format(statement)
    cur.execute(wrapped, params)
    cur.execute(wrapped, params)
    return cur.fetchone()[0][0]


def nodes(node: dict) -> Iterator[dict]:
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)


def describe(node: dict) -> str:
    kind = ("Parallel " if node.get("Parallel Aware") else "") + node["Node Type"]
    if node["Node Type"] in ("Index Scan", "Index Only Scan") and node.get("Scan Direction") == "Backward":
        kind += " Backward"
    if node["Node Type"] == "Bitmap Heap Scan":
        inner = sorted({n["Index Name"] for n in nodes(node) if "Index Name" in n})
        return f"{kind} ({' + '.join(inner)})"
    return f"{kind} {node['Index Name']}" if "Index Name" in node else kind


def top_of_plan(root: dict) -> str:
    chain, node = [], root
    while True:
        chain.append(describe(node))
        if node["Node Type"] not in _WRAPPERS or not node.get("Plans"):
            return " → ".join(chain)
        node = node["Plans"][0]


def examine(plan: dict) -> dict:
    """The figures the table shows, and the flags: a sequential scan, a big sort, a filter discarding much."""
    root = plan["Plan"]
    everything = list(nodes(root))
    scans = [n for n in everything if n["Node Type"].endswith("Scan") and "Relation Name" in n]
    read = sum((n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n["Actual Loops"] for n in scans)
    flags = [f"SEQ SCAN {n['Relation Name']}" for n in everything if n["Node Type"] == "Seq Scan"]
    for n in everything:
        if n["Node Type"] == "Sort":
            sorted_rows = sum(c["Actual Rows"] * c["Actual Loops"] for c in n.get("Plans", []))
            if sorted_rows > BIG:
                flags.append(f"SORT of {sorted_rows:,} rows")
        discarded = n.get("Rows Removed by Filter", 0) * n["Actual Loops"]
        if discarded > BIG:
            flags.append(f"filter discards {discarded:,}")
    return {
        "top": top_of_plan(root),
        "indexes": sorted({n["Index Name"] for n in everything if "Index Name" in n}),
        "read": read,
        "hit": root.get("Shared Hit Blocks", 0),
        "blocks_read": root.get("Shared Read Blocks", 0),
        "ms": plan["Execution Time"],
        "flags": flags,
    }


def render(node: dict, depth: int = 0) -> list[str]:
    """A plan tree as indented text, from its JSON."""
    line = (
        f"{'  ' * depth}-> {describe(node)}  (rows={node['Actual Rows']:,} loops={node['Actual Loops']} "
        f"time={node['Actual Total Time']:.2f} ms hit={node.get('Shared Hit Blocks', 0)} "
        f"read={node.get('Shared Read Blocks', 0)})"
    )
    lines = [line]
    for detail in ("Index Cond", "Recheck Cond", "Filter", "Rows Removed by Filter", "Sort Key", "Sort Method"):
        if detail in node:
            lines.append(f"{'  ' * depth}     {detail}: {node[detail]}")
    for child in node.get("Plans", []):
        lines += render(child, depth + 1)
    return lines


def explain_catalogue(database: str, stones: int) -> str:
    """bench/explain.md: every sort key both ways under each filter set, the count statements, a few full plans."""
    rows, counts, plans = [], [], {}
    with psycopg.connect(database, autocommit=True) as conn, conn.cursor() as cur:
        cap = settings_for_api(database, Path("unused")).api_count_cap
        for label, filters in EXPLAIN_FILTERS.items():
            for sort in SORTS:
                statement, params = page_statement(cur, DiamondSearch(**filters, sort=sort))
                plan = explain(cur, statement, params)
                plans[(label, sort)] = plan
                rows.append((label, sort, examine(plan)))
            statement, params = search.capped_count(DiamondSearch(**filters), cap)
            plan = explain(cur, statement, params)
            plans[(label, "count")] = plan
            counts.append((label, examine(plan)))
    progress(f"explained {len(rows)} page statements and {len(counts)} counts")
    return explain_markdown(rows, counts, plans, stones, cap)


def explain_markdown(rows: list, counts: list, plans: dict, stones: int, cap: int) -> str:
    def line(label: str, sort: str, e: dict) -> str:
        flags = "**" + "; ".join(e["flags"]) + "**" if e["flags"] else ""
        return (
            f"| {label} | {sort} | {e['top']} | {e['read']:,} | {e['hit']:,} / {e['blocks_read']:,} | "
            f"{e['ms']:.2f} | {flags} |"
        )

    header = (
        "| filters | sort | plan (top nodes) | rows read | buffers hit / read | ms | flag |\n"
        "|---|---|---|---:|---:|---:|---|"
    )
    out = [
        "# Search plans",
        "",
        f"Generated by `bench/bench_api.py --write`; do not edit. {stones:,} listed stones, built by a full sync "
        "of both emulated feeds, then VACUUM ANALYZE. Each statement is the page the API runs (50 rows + 1, no "
        "cursor) or its count (capped at "
        f"{cap + 1:,} rows), built by `shared/catalogue/search.py`; figures from `EXPLAIN (ANALYZE, BUFFERS, "
        "FORMAT JSON)`, second run. Rows read: rows the scan nodes returned plus those their filters discarded. "
        f"Flagged: a sequential scan, a sort of more than {BIG:,} rows, a filter discarding more than {BIG:,} rows.",
        "",
        f"Machine: {machine()}.",
        "",
        "Filter sets: " + "; ".join(f"{k}: `{query_string(v) or '-'}`" for k, v in EXPLAIN_FILTERS.items()) + ".",
        "",
        "## Summary",
        "",
        *index_summary(rows, counts),
        "",
        "## Page statements",
        "",
        header,
        *(line(label, sort, e) for label, sort, e in rows),
        "",
        "## Count statements",
        "",
        header,
        *(line(label, "-", e) for label, e in counts),
        "",
        "## A few full plans",
    ]
    slowest = max(rows, key=lambda r: r[2]["ms"])
    chosen = [
        ("none", "-listed_at", "a broad first page: walks the sort index and stops after 51 rows"),
        ("shape+carats+color+clarity", "price_cents", "the storefront's main search"),
        (slowest[0], slowest[1], "the slowest page statement above"),
        (max(counts, key=lambda r: r[1]["ms"])[0], "count", "the slowest count"),
    ]
    for label, sort, why in chosen:
        out += ["", f"### {label}, {sort}: {why}", "", "```", *render(plans[(label, sort)]["Plan"]), "```"]
    return "\n".join(out) + "\n"


def index_summary(rows: list, counts: list) -> list[str]:
    """Which index served which statements, and what was flagged; generated from the plans."""
    served: dict[str, list[str]] = {}
    for label, sort, e in rows:
        for index in e["indexes"] or ["(no index)"]:
            served.setdefault(index, []).append(f"{label} / {sort}")
    for label, e in counts:
        for index in e["indexes"] or ["(no index)"]:
            served.setdefault(index, []).append(f"{label} / count")
    lines = []
    for index, uses in sorted(served.items(), key=lambda item: -len(item[1])):
        lines.append(f"- `{index}` ({len(uses)}): " + ", ".join(uses))
    flagged = [(label, sort, e) for label, sort, e in rows] + [(label, "count", e) for label, e in counts]
    flagged = [r for r in flagged if r[2]["flags"]]
    slow = sorted(rows, key=lambda r: -r[2]["ms"])[:3]
    lines += [
        "",
        f"{len(flagged)} of {len(rows) + len(counts)} statements flagged"
        + (
            ": " + "; ".join(f"{label} / {sort} ({', '.join(e['flags'])})" for label, sort, e in flagged)
            if flagged
            else ""
        )
        + ".",
        "Slowest page statements: " + "; ".join(f"{label} / {sort} {e['ms']:.1f} ms" for label, sort, e in slow) + ".",
    ]
    return lines


# --- where the server's CPU goes (py-spy) ------------------------------------------------------------

# Frames are "function (module/file.py:line)", paths as py-spy shortens them. A sample belongs to the
# first WORK group found anywhere in its stack (psycopg called from the auth code is psycopg's time);
# otherwise to the LAYER of its innermost recognised frame (every stack passes through uvicorn and
# asyncio, so only the innermost says which layer was running).
WORK_GROUPS = (
    ("secret lookup via a worker thread (anyio to_thread, both sides)", ("(anyio/to_thread", "(threading.py")),
    ("access log line (logging)", ("(logging/", "logs.py:")),
    ("psycopg: gate / search statements, rows, pool", ("(psycopg/", "(psycopg_pool/")),
    ("signature: canonical request, HMAC", ("signing.py:", "verify.py:", "(hmac.py")),
    ("JSON encoding of the page", ("(api/encoding.py",)),
)
LAYER_GROUPS = (
    ("query string to DiamondSearch (FastAPI params, pydantic)", ("(pydantic", "(fastapi/dependencies/")),
    ("HTTP: uvicorn, httptools, socket reads and writes", ("(uvicorn/", "(httptools", "selector_events.py:")),
    ("Starlette / FastAPI routing and middleware", ("(starlette/", "(fastapi/")),
    ("caratflow api/ and shared/ code", ("(api/", "(catalogue/", "(access/", "(shared/")),
    ("asyncio event loop", ("(asyncio/", "(selectors.py")),
)
PROFILE_GROUPS = WORK_GROUPS + LAYER_GROUPS


def profile_server(setup: Setup, base: str, server: psutil.Process, etag: str | None, seconds: int = 10) -> Any:
    """Share of the server's CPU samples by group while it serves the load (None: py-spy not installed)."""
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        return None
    output = setup.folder / "profile.txt"
    items = signed_requests(setup.probes, setup.key, seconds * 6000, 9, etag)
    recorder = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(server.pid),
            "--subprocesses",
            "--nonblocking",
            "--rate",
            "200",
            "--duration",
            str(seconds),
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)  # py-spy attaches; the load then covers its whole window
    replay(base, items, seconds + 1, setup.connections, setup.folder)
    recorder.wait(60)
    return grouped_samples(output.read_text())


def grouped_samples(raw: str) -> dict[str, float]:
    """py-spy's raw output ("frame;frame;... count" per line) as shares of the samples by group."""
    groups: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            groups[sample_group(stack.split(";"))] += int(count)
    total = sum(groups.values()) or 1
    return {name: n / total for name, n in groups.most_common()}


def sample_group(frames: list[str]) -> str:
    for name, marks in WORK_GROUPS:
        if any(mark in frame for frame in frames for mark in marks):
            return name
    for frame in reversed(frames):
        for name, marks in LAYER_GROUPS:
            if any(mark in frame for mark in marks):
                return name
    return "other"


# --- the report --------------------------------------------------------------------------------------


def ms(values: tuple[float, ...]) -> str:
    return " / ".join(f"{v:.1f}" for v in values)


WORKLOADS = {
    "search": "search mix (200)",
    "search-uncached": "search mix, answer cache off (200)",
    "304": "revalidation (304)",
}


def run_label(workers: int, kind: str) -> str:
    server = "1 process" if workers == 1 else f"--workers {workers}"
    return f"{server} | {WORKLOADS[kind]}"


def load_table(runs: dict) -> list[str]:
    lines = [
        "| server | workload, 50 connections | requests/s (lowest - highest part) | p50 ms | p95 ms | p99 ms | "
        "responses | not as expected |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for (workers, kind), run in runs.items():
        statuses = ", ".join(f"{n:,} x {s}" for s, n in sorted(run["statuses"].items()))
        p50, p95, p99 = run["latency"]
        lowest, highest = min(run["rps_parts"]), max(run["rps_parts"])
        lines.append(
            f"| {run_label(workers, kind)} | {run['rps']:,.0f} ({lowest:,.0f} - {highest:,.0f}) | {p50:.1f} | "
            f"{p95:.1f} | {p99:.1f} | {statuses} | {run['unexpected']} |"
        )
    return lines


def resources_table(runs: dict) -> list[str]:
    """Where each run's time went: CPU by process, what the API's database sessions did, connection spread."""
    lines = [
        "| server | workload | CPU, share of both cores: server (kernel part) / PostgreSQL (kernel part) / "
        "autocannon / other | API's PostgreSQL sessions, mean: running / waiting in PostgreSQL (on what) / idle | "
        "client connections per server process, each part |",
        "|---|---|---|---|---|",
    ]
    for (workers, kind), run in runs.items():
        cpu, db = run["cpu"], run["sessions"]
        waits = ", ".join(f"{wait} {n:.1f}" for wait, n in db["waits"].items())
        splits = "; ".join(" / ".join(map(str, split)) for split in run["splits"])
        lines.append(
            f"| {run_label(workers, kind)} | {cpu['server']:.0%} ({cpu['server_sys']:.0%}) / "
            f"{cpu['postgres']:.0%} ({cpu['postgres_sys']:.0%}) / {cpu['load']:.0%} / {cpu['other']:.0%} | "
            f"{db['running']:.1f} / {db['waiting']:.1f}{f' ({waits})' if waits else ''} / {db['idle']:.1f} | "
            f"{splits} |"
        )
    return lines


def targets_table(runs: dict) -> list[str]:
    searches = {w: r for (w, kind), r in runs.items() if kind == "search"}
    revalidations = {w: r for (w, kind), r in runs.items() if kind == "304"}

    def server(workers: int) -> str:
        return "1 process" if workers == 1 else f"{workers} workers"

    uncached = {w: r for (w, kind), r in runs.items() if kind == "search-uncached"}
    p99 = "; ".join(f"{server(w)}: {r['latency'][2]:.1f} ms" for w, r in searches.items())
    p99_cold = "; ".join(f"{server(w)}: {r['latency'][2]:.1f} ms" for w, r in uncached.items())
    rps = "; ".join(f"{server(w)}: {r['rps']:,.0f} req/s" for w, r in revalidations.items())
    p99_met = [w for w, r in searches.items() if r["latency"][2] < 50]
    rps_met = [w for w, r in revalidations.items() if r["rps"] >= 1000]

    def verdict(met: list[int], every: dict) -> str:
        if len(met) == len(every):
            return "met"
        return "missed" if not met else "met with " + ", ".join(server(w) for w in met) + " only"

    return [
        "| target | measured | verdict |",
        "|---|---|---|",
        f"| search mix p99 < 50 ms at 50 clients | {p99} | {verdict(p99_met, searches)} |",
        *(
            [
                f"| the same, answer cache off | {p99_cold} | "
                f"{verdict([w for w, r in uncached.items() if r['latency'][2] < 50], uncached)} |"
            ]
            if uncached
            else []
        ),
        f"| >= 1,000 req/s of 304 revalidations | {rps} | {verdict(rps_met, revalidations)} |",
    ]


def per_request_table(probes: list[Probe], runs: dict, floor: dict) -> list[str]:
    under_load = {w: r["by_probe"] for (w, kind), r in runs.items() if kind == "search"}
    workers = sorted(under_load)
    lines = [
        "| request | share of the mix | "
        + " | ".join(f"under load, {'1 process' if w == 1 else f'{w} workers'}: p50 / p95 / p99 ms" for w in workers)
        + " | SQL floor, page statement: p50 / p95 / p99 ms | count on a cache miss: p50 / p95 / p99 ms |",
        "|---|---:|" + "---:|" * len(workers) + "---:|---:|",
    ]
    total = sum(p.weight for p in probes)
    for probe in probes:
        loads = " | ".join(ms(under_load[w].get(probe.name, ())) for w in workers)
        count = ms(floor[probe.name]["count"]) if "count" in floor[probe.name] else "-"
        lines.append(
            f"| {probe.name} | {probe.weight / total:.0%} | {loads} | {ms(floor[probe.name]['page'])} | {count} |"
        )
    lines.append(
        "| every request, 304s included: `caratflow_api_gate` (nonce, rate budget, dataset version) | - | "
        + " | ".join("-" for _ in workers)
        + f" | {ms(floor['gate']['page'])} | - |"
    )
    return lines


def profile_table(profiles: dict[str, dict[str, float] | None]) -> list[str]:
    if not profiles:
        return ["(the server is profiled in its 1-process configuration, which this run left out)"]
    if not all(profiles.values()):
        return ["(py-spy is not installed in the venv: `.venv/bin/pip install py-spy` adds this table)"]
    names = [name for name, _ in PROFILE_GROUPS] + ["other"]
    lines = [
        "| server CPU samples, 1 process (py-spy, 200 Hz, 10 s) | revalidation (304) | search mix |",
        "|---|---:|---:|",
    ]
    for name in names:
        shares = [profiles[kind].get(name, 0.0) for kind in ("304", "search")]
        if any(share >= 0.005 for share in shares):
            lines.append(f"| {name} | {shares[0]:.0%} | {shares[1]:.0%} |")
    return lines


def report(probes: list[Probe], runs: dict, floor: dict, profiles: dict, args, facts: dict) -> str:
    fastest, median, slowest = facts["speed"]
    return "\n".join(
        [
            *load_table(runs),
            "",
            *targets_table(runs),
            "",
            *resources_table(runs),
            "",
            *per_request_table(probes, runs, floor),
            "",
            *profile_table(profiles),
            "",
            f"{facts['stones']:,} listed stones, built by a full sync of both emulated feeds (the real main job), "
            f"then VACUUM ANALYZE: table {facts['table']}, its indexes {facts['indexes']}, PostgreSQL's "
            f"shared_buffers {facts['shared_buffers']}. Load: autocannon {AUTOCANNON.split('@')[1]}, "
            f"{args.connections} connections, {args.seconds:.0f} s per figure ({SEGMENTS} parts, each on fresh "
            f"connections) after a {WARMUP_SECONDS} s warm-up; every request signed beforehand with its own nonce "
            "and replayed once; a status other than the expected one, a connection error or a timeout counts as "
            "not as expected. Server: `caratflow serve` (uvicorn with httptools, asyncio loop), default settings "
            f"(DB_POOL_MAX_SIZE {facts['pool']} per process, access log at INFO) except the search rate limit, "
            f"raised for the bench client to {RATE_PER_MINUTE:,}/min with a burst of {BURST:,} (every request "
            "still runs the rate-limit update). SQL floor: one psycopg connection, sequential, "
            f"{args.floor_iterations} runs per page statement. Load tool, server and PostgreSQL share the machine.",
            "",
            f"Machine: {machine()}. PostgreSQL 16 embedded (pgserver), default settings. How steady it is: a fixed "
            f"pure-Python loop took {fastest:.0f} - {slowest:.0f} ms (median {median:.0f}) over 15 runs before the "
            "load runs.",
        ]
    )


# --- main --------------------------------------------------------------------------------------------


def database_facts(database: str) -> dict[str, Any]:
    """What bounds the database's caching: its buffer size against the catalogue's size."""
    with psycopg.connect(database) as conn:
        (shared_buffers,) = conn.execute("SHOW shared_buffers").fetchone()
        (stones,) = conn.execute("SELECT count(*) FROM diamonds WHERE delisted_at IS NULL").fetchone()
        table, indexes = conn.execute(
            "SELECT pg_size_pretty(pg_table_size('diamonds')), pg_size_pretty(pg_indexes_size('diamonds'))"
        ).fetchone()
    pool = settings_for_api(database, Path("unused")).db_pool_max_size
    return {"stones": stones, "shared_buffers": shared_buffers, "table": table, "indexes": indexes, "pool": pool}


def current_etag(base: str, probe: Probe, key: BenchKey) -> str:
    """One signed search: the ETag the revalidations send back (and a check that signing works)."""
    path, query = probe.variants[0].path, probe.variants[0].query
    signature = sign_request(key_id=key.key_id, secret=key.secret, method="GET", path=path, query=query)
    response = httpx.get(f"{base}{path}?{query}", headers={"Authorization": signature.header()}, timeout=30)
    if response.status_code != 200:
        raise SystemExit(f"a signed search failed: {response.status_code} {response.text[:500]}")
    return response.headers["etag"]


def measure_uncached(setup: Setup) -> dict:
    """The search mix against one process whose answer cache is off: every search reaches PostgreSQL."""
    with api_server(setup.database, setup.folder, 1, answer_cache=False) as (base, server):
        progress(f"1 worker, search with the answer cache off: {WARMUP_SECONDS} s warm-up + {setup.seconds:.0f} s...")
        run = load_run(setup, base, server, None)
        progress(f"  {run['rps']:,.0f} req/s, p50/p95/p99 {ms(run['latency'])} ms, {run['statuses']}")
    return {(1, "search-uncached"): run}


def measure_server(setup: Setup, workers: int) -> tuple[dict, dict]:
    """The search mix and the revalidations against one server configuration; profiles with 1 process."""
    runs, profiles = {}, {}
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
