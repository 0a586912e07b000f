"""bench_api's results: the tables and the notes written into bench/README.md."""

from __future__ import annotations

import argparse
from typing import Any

from api_load import AUTOCANNON, BURST, RATE_PER_MINUTE, SEGMENTS, WARMUP_SECONDS
from api_mix import Probe
from api_profile import PROFILE_GROUPS
from common import machine

# A load run's figures by (server workers, workload).
Runs = dict[tuple[int, str], dict[str, Any]]


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


def load_table(runs: Runs) -> list[str]:
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


def resources_table(runs: Runs) -> list[str]:
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


def targets_table(runs: Runs) -> list[str]:
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

    def verdict(met: list[int], every: dict[int, dict[str, Any]]) -> str:
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


def per_request_table(probes: list[Probe], runs: Runs, floor: dict[str, Any]) -> list[str]:
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
    shares_by_kind = {kind: profile for kind, profile in profiles.items() if profile is not None}
    names = [name for name, _ in PROFILE_GROUPS] + ["other"]
    lines = [
        "| server CPU samples, 1 process (py-spy, 200 Hz, 10 s) | revalidation (304) | search mix |",
        "|---|---:|---:|",
    ]
    for name in names:
        shares = [shares_by_kind[kind].get(name, 0.0) for kind in ("304", "search")]
        if any(share >= 0.005 for share in shares):
            lines.append(f"| {name} | {shares[0]:.0%} | {shares[1]:.0%} |")
    return lines


def report(
    probes: list[Probe],
    runs: Runs,
    floor: dict[str, Any],
    profiles: dict[str, Any],
    args: argparse.Namespace,
    facts: dict[str, Any],
) -> str:
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
