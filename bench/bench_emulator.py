"""Benchmark of the feed emulator: inventory build time, memory, and pages served per second.

    .venv/bin/python bench/bench_emulator.py [--sizes 100000 1000000 2000000] [--pages 400]

For each size: build time of the inventory (in this process); pages/s and stones/s answering
`diamonds_by_query` (50 items, the full item selection) in-process, and projection alone; then over
HTTP from a sequential httpx client to `python -m emulator` in its own process (as the real feed is),
plus planner-style count queries/s and the server's RSS. Prints a markdown table and the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
from graphql import FragmentDefinitionNode, GraphQLObjectType, parse

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "bench"))

from common import emulator_process, machine, write_section  # noqa: E402 (after the path set-up above)

from emulator import EmulatorConfig, Inventory  # noqa: E402
from emulator.filters import parse_order, parse_query  # noqa: E402
from emulator.page import PageContext  # noqa: E402
from emulator.project import compile_plan, project_page  # noqa: E402
from emulator.schema import SCHEMA  # noqa: E402
from emulator.state import EmulatorState  # noqa: E402

FULL_ITEM = """
  id price discount diamond_price markup_price markup_discount
  diamond {
    id availability HoldId NivodaStockId supplierStockId image video v360 { url }
    eyeClean brown green blue gray milky mine_of_origin return_window
    delivery_time { min_business_days max_business_days express_timeline_applicable }
    supplier { id name legal_name }
    certificate {
      id lab certNumber pdfUrl shape carats color clarity cut polish symmetry floInt floCol
      length width depth depthPercentage table girdle culetSize crownAngle crownHeight pavAngle pavDepth
      labgrown labgrown_type treated f_color f_intensity f_overtone
    }
  }
"""
PAGE = f"""
query Page($token: String!, $query: DiamondQuery, $offset: Int, $limit: Int, $order: DiamondOrder) {{
  as(token: $token) {{
    diamonds_by_query(query: $query, offset: $offset, limit: $limit, order: $order) {{
      total_count items {{ {FULL_ITEM} }}
    }}
  }}
}}
"""
COUNT = """
query Count($token: String!, $query: DiamondQuery) { as(token: $token) { diamonds_by_query_count(query: $query) } }
"""
# A production-like partition: natural stones in a band of price per carat, in creation order.
PARTITION = {"labgrown": False, "dollar_per_carat": {"from": 1000, "to": 3000}}
ORDER = {"type": "createdAt", "direction": "ASC"}


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def _timed(pages: int, step: Callable[[int], int]) -> tuple[int, int, float]:
    """Calls step(offset) -> items until `pages` pages or an empty page; (pages, items, seconds)."""
    offset, done, started = 0, 0, time.perf_counter()
    while done < pages:
        got = step(offset)
        if not got:
            break
        offset += got
        done += 1
    return done, offset, time.perf_counter() - started


def in_process(inventory: Inventory, pages: int) -> dict[str, float]:
    state = EmulatorState.build(EmulatorConfig(size=0, seed=inventory.seed, short_page_rate=0.0), inventory)
    token = state.tokens.login(state.config.username, state.config.password.get_secret_value())

    def execute(offset: int) -> int:
        variables = {"token": token, "query": PARTITION, "offset": offset, "limit": 50, "order": ORDER}
        body = state.service.execute(state.service.prepare(PAGE, variables, None), token)
        encoded = json.dumps(body, separators=(",", ":")).encode()
        assert encoded
        return len(body["data"]["as"]["diamonds_by_query"]["items"])

    first = time.perf_counter()
    execute(0)  # the first query of a partition filters and orders it; the rest are slices
    first_page = time.perf_counter() - first
    n, items, seconds = _timed(pages, execute)

    # Projection alone: the page's stones are known; only the fields are derived and assembled.
    fragment = parse(f"fragment Full on Item {{ {FULL_ITEM} }}").definitions[0]
    item = SCHEMA.type_map["Item"]
    assert isinstance(fragment, FragmentDefinitionNode)
    assert isinstance(item, GraphQLObjectType)
    plan = compile_plan(item, [fragment.selection_set], {}, None)
    ordered = inventory.ordered(parse_query(PARTITION, inventory.resolve_ids), parse_order(ORDER))

    def project(offset: int) -> int:
        stones = ordered[offset : offset + 50]
        return len(project_page(plan, "Item", PageContext(inventory.hasher, stones, inventory.gather(stones), 0.0)))

    pn, _, pseconds = _timed(pages, project)
    return {
        "first_page_ms": first_page * 1000,
        "pages_s": _rate(n, seconds),
        "stones_s": _rate(items, seconds),
        "projection_pages_s": _rate(pn, pseconds),
    }


def over_http(size: int, seed: int, pages: int) -> dict[str, float]:
    with emulator_process(size, seed, "--short-page-rate", "0") as (url, server):
        with httpx.Client(timeout=60) as http:
            token = _login(http, url)

            def page(offset: int) -> int:
                variables = {"token": token, "query": PARTITION, "offset": offset, "limit": 50, "order": ORDER}
                response = http.post(url, json={"query": PAGE, "variables": variables})
                response.raise_for_status()
                return len(response.json()["data"]["as"]["diamonds_by_query"]["items"])

            page(0)
            n, items, seconds = _timed(pages, page)
            # What a density scan sends: $50 bands of price per carat, both kinds of stone.
            bands = [
                {"labgrown": bool(i % 2), "dollar_per_carat": {"from": 50 * i, "to": 50 * (i + 1)}} for i in range(500)
            ]
            started = time.perf_counter()
            for band in bands:
                http.post(url, json={"query": COUNT, "variables": {"token": token, "query": band}}).raise_for_status()
            count_seconds = time.perf_counter() - started
        rss = psutil.Process(server.pid).memory_info().rss
    return {
        "pages_s": _rate(n, seconds),
        "stones_s": _rate(items, seconds),
        "counts_s": _rate(len(bands), count_seconds),
        "rss_mb": rss / 2**20,
    }


def _login(http: httpx.Client, url: str) -> str:
    config = EmulatorConfig()
    user, password = json.dumps(config.username), json.dumps(config.password.get_secret_value())
    query = f"{{ authenticate {{ username_and_password(username: {user}, password: {password}) {{ token }} }} }}"
    token: str = http.post(url, json={"query": query}).json()["data"]["authenticate"]["username_and_password"]["token"]
    return token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 2_000_000])
    parser.add_argument("--pages", type=int, default=400, help="pages per measurement")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="write the table into bench/README.md")
    args = parser.parse_args()

    rows = []
    for size in args.sizes:
        started = time.perf_counter()
        inventory = Inventory.generate(size=size, seed=args.seed)
        build = time.perf_counter() - started
        local = in_process(inventory, args.pages)
        del inventory
        remote = over_http(size, args.seed, args.pages)
        rows.append((size, build, local, remote))
        print(f"... {size:,} stones done", file=sys.stderr, flush=True)

    lines = [
        "| stones | build s | server RSS MiB | HTTP pages/s | HTTP stones/s | HTTP counts/s | in-process pages/s "
        "(incl. JSON) | projection only pages/s | first page of a partition ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, build, local, remote in rows:
        lines.append(
            f"| {size:,} | {build:.2f} | {remote['rss_mb']:.0f} | {remote['pages_s']:.0f} "
            f"| {remote['stones_s']:,.0f} | {remote['counts_s']:.0f} | {local['pages_s']:.0f} "
            f"| {local['projection_pages_s']:.0f} | {local['first_page_ms']:.0f} |"
        )
    lines += [
        "",
        f"Machine: {machine()}",
        f"Pages: 50 items with every item field ({args.pages} pages per figure), sequential client on "
        "loopback; partition = natural stones at $1,000-3,000/ct in creation order.",
    ]
    print("\n".join(lines))
    if args.write:
        write_section("bench_emulator", "\n".join(lines))


if __name__ == "__main__":
    main()
