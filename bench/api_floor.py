"""bench_api's SQL floor: the statements of the mix and the gate through psycopg, one connection, in turn."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from api_catalogue import settings_for_api
from api_load import BURST, RATE_PER_MINUTE, BenchKey, percentiles
from api_mix import Probe, Variant, expected_rows, page_statement
from psycopg.rows import dict_row

from shared.access import gate
from shared.catalogue import search
from shared.catalogue.query import DiamondSearch
from shared.config import Settings


def timed(cur: psycopg.Cursor[Any], statement: Any, params: Any) -> float:
    started = time.perf_counter()
    cur.execute(statement, params)
    cur.fetchall()
    return (time.perf_counter() - started) * 1000


def count_ms(cur: psycopg.Cursor[Any], query: DiamondSearch, cap: int) -> float:
    """What the API's count costs on a cache miss: the estimate, then the capped count unless trusted."""
    started = time.perf_counter()
    if search.count_needed(expected_rows(cur, query), cap):
        statement, params = search.capped_count(query, cap)
        cur.execute(statement, params).fetchone()
    return (time.perf_counter() - started) * 1000


def search_of(variant: Variant) -> DiamondSearch:
    assert variant.search is not None  # a probe's variants are all searches or all by id
    return variant.search


def sql_floor(database: str, probes: list[Probe], key: BenchKey, iterations: int) -> dict[str, dict[str, Any]]:
    """Each probe's statements through psycopg: one connection, sequential, `iterations` timings each."""
    settings = settings_for_api(database, Path("unused"))
    cap = settings.api_count_cap
    floor: dict[str, dict[str, Any]] = {}
    # Autocommit and psycopg's automatic prepare after 5 runs, like the API's pooled connections.
    with psycopg.connect(database, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
        for probe in probes:
            variants = [probe.variants[i % len(probe.variants)] for i in range(iterations + 10)]
            if variants[0].search is None:
                runs = [timed(cur, search.by_id(), (v.diamond_id,)) for v in variants]
                floor[probe.name] = {"page": percentiles(runs[10:])}
                continue
            runs = [timed(cur, *page_statement(cur, search_of(v), v.after)) for v in variants]
            counts = [count_ms(cur, search_of(v), cap) for v in variants[: max(iterations // 4, 20) + 2]]
            floor[probe.name] = {"page": percentiles(runs[10:]), "count": percentiles(counts[2:])}
        floor["gate"] = {"page": gate_floor(cur, key, settings, iterations * 2)}
    return floor


def gate_floor(cur: psycopg.Cursor[Any], key: BenchKey, settings: Settings, iterations: int) -> tuple[float, ...]:
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
