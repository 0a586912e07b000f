"""bench_api's load: the bench client's key, `caratflow serve`, requests signed beforehand and replayed by
autocannon, and the load runs with what was sampled during them."""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from api_catalogue import settings_for_api
from api_mix import Probe
from api_sampling import SessionSampler, connections_per_process, cpu_snapshot, cpu_used, wait_for_quiet
from common import PROJECT, progress, serve_database

from caratflow_client.signing import sign_request
from shared.access.keys import create_key
from shared.db.connect import open_pool
from shared.secrets import open_secret_store

# autocannon lives in a prefix of its own: `npm install --prefix .tools <pkg>` rewrites .tools as a
# project holding only <pkg>, which would remove the Azurite that dev.py installs there.
AUTOCANNON = "autocannon@8.0.0"
AUTOCANNON_PREFIX = PROJECT / ".tools" / "autocannon"
REPLAY_JS = PROJECT / "bench" / "load" / "replay.js"
# Raised so that the bench client is never refused; every request still runs the full GCRA update.
RATE_PER_MINUTE = 6_000_000
BURST = 100_000
WARMUP_SECONDS = 5
# The measured time is split into parts, each replayed on fresh connections: the spread of their
# requests/s shows how steady the machine was (this VM's speed varies from second to second).
SEGMENTS = 3


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


# Which variant each probe sends next. It carries on from run to run, so that a probe whose requests
# vary (the price slider) does not repeat in the measured run what the warm-up already cached.
_TURNS: Counter[str] = Counter()


def signed_requests(probes: list[Probe], key: BenchKey, count: int, seed: int, etag: str | None) -> list[list[Any]]:
    """`count` requests drawn from the weighted mix, each signed now with its own nonce.

    The API refuses a reused nonce (401) and a timestamp more than 300 s off, so each run replays a
    list signed just before it, every entry exactly once.
    """
    rng = random.Random(seed)
    deck = [probe for probe in probes for _ in range(probe.weight)]
    items: list[list[Any]] = []
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
    """`caratflow serve` as a deployment runs it, the bench client's rate limit raised; yields its base URL."""
    env = {
        "API_SEARCH_RATE_PER_MINUTE": str(RATE_PER_MINUTE),
        "API_SEARCH_BURST": str(BURST),
        **({} if answer_cache else {"API_ANSWER_CACHE_MB": "0"}),
    }
    log_name = f"serve-{workers}{'' if answer_cache else '-uncached'}.log"
    with serve_database(database, folder, workers, log_name, env) as (base, server):
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


def replay(base: str, items: list[list[Any]], seconds: float, connections: int, folder: Path) -> dict[str, Any]:
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
    result: dict[str, Any] = json.loads(output_path.read_text())
    result["load_cpu"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result


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


def load_run(setup: Setup, base: str, server: psutil.Process, etag: str | None) -> dict[str, Any]:
    """A warm-up, then the measured run in SEGMENTS parts: requests/s, latency, statuses, CPU by process."""
    wait_for_quiet()
    # The warm-up primes the server (pools, key and count caches) and tells how many requests to sign.
    warm_up = signed_requests(setup.probes, setup.key, WARMUP_SECONDS * 4000, 1, etag)
    warm = replay(base, warm_up, WARMUP_SECONDS, setup.connections, setup.folder)
    rate = warm["used"] / warm["seconds"]
    segments = [segment(setup, base, server, etag, rate, seed) for seed in range(2, 2 + SEGMENTS)]
    return summarise(segments, expected=304 if etag else 200)


def segment(
    setup: Setup, base: str, server: psutil.Process, etag: str | None, rate: float, seed: int
) -> dict[str, Any]:
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


def summarise(segments: list[dict[str, Any]], *, expected: int) -> dict[str, Any]:
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
