"""bench_api's plans (bench/explain.md): EXPLAIN (ANALYZE, BUFFERS) of every sort key both ways under
representative filters, the count statements, and which index served each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from api_catalogue import settings_for_api
from api_mix import ROUND_1CT_GRADES, page_statement, query_string
from common import machine, progress
from psycopg import sql

from shared.catalogue import search
from shared.catalogue.query import SORT_COLUMNS, DiamondSearch
from shared.db.rows import one

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


def explain(cur: psycopg.Cursor, statement: sql.Composable, params: dict[str, Any]) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON), second run (the first warms the caches the API would have warm)."""
    wrapped = sql.SQL("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}").format(statement)
    cur.execute(wrapped, params)
    cur.execute(wrapped, params)
    (document,) = one(cur.fetchone())
    plan: dict[str, Any] = document[0]
    return plan


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)


def describe(node: dict[str, Any]) -> str:
    kind = ("Parallel " if node.get("Parallel Aware") else "") + node["Node Type"]
    if node["Node Type"] in ("Index Scan", "Index Only Scan") and node.get("Scan Direction") == "Backward":
        kind += " Backward"
    if node["Node Type"] == "Bitmap Heap Scan":
        inner = sorted({n["Index Name"] for n in nodes(node) if "Index Name" in n})
        return f"{kind} ({' + '.join(inner)})"
    return f"{kind} {node['Index Name']}" if "Index Name" in node else kind


def top_of_plan(root: dict[str, Any]) -> str:
    chain, node = [], root
    while True:
        chain.append(describe(node))
        if node["Node Type"] not in _WRAPPERS or not node.get("Plans"):
            return " → ".join(chain)
        node = node["Plans"][0]


def examine(plan: dict[str, Any]) -> dict[str, Any]:
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


def render(node: dict[str, Any], depth: int = 0) -> list[str]:
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
    rows: list[Row] = []
    counts: list[Count] = []
    plans: dict[tuple[str, str], dict[str, Any]] = {}
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


Row = tuple[str, str, dict[str, Any]]  # filter set, sort, what examine() found
Count = tuple[str, dict[str, Any]]  # filter set, what examine() found


def explain_markdown(
    rows: list[Row], counts: list[Count], plans: dict[tuple[str, str], dict[str, Any]], stones: int, cap: int
) -> str:
    def line(label: str, sort: str, e: dict[str, Any]) -> str:
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


def index_summary(rows: list[Row], counts: list[Count]) -> list[str]:
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
