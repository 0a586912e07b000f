"""bench_api's query mix: the requests a storefront sends, and the page statement the API builds for each."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg.rows import dict_row

from shared.access import server_keys
from shared.catalogue import cursor as cursors
from shared.catalogue import search
from shared.catalogue.query import DiamondSearch
from shared.db.rows import one

PAGE = 50  # the API's default page size, which the mix uses


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
    (prices,) = one(
        conn.execute(
            "SELECT percentile_disc((SELECT array_agg(p / 100.0) FROM generate_series(20, 80) AS p)) "
            "WITHIN GROUP (ORDER BY price_cents) FROM diamonds WHERE shape = 'ROUND' AND delisted_at IS NULL"
        ).fetchone()
    )
    rng, ranges = random.Random(11), set[tuple[int, int]]()
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
        (fancy_color,) = one(
            conn.execute(
                "SELECT fancy_color FROM diamonds WHERE fancy_color IS NOT NULL "
                "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            ).fetchone()
        )
        # "Expensive": the top 5% of natural rounds of 2-3 ct.
        (expensive,) = one(
            conn.execute(
                "SELECT percentile_disc(0.95) WITHIN GROUP (ORDER BY price_cents) FROM diamonds "
                "WHERE shape = 'ROUND' AND NOT lab_grown AND carats BETWEEN 2 AND 3"
            ).fetchone()
        )
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


def expected_rows(cur: psycopg.Cursor[Any], query: DiamondSearch) -> int:
    """The planner's estimate of the matches, which the API uses to choose the page statement's form."""
    statement, params = search.estimated_count(query)
    with cur.connection.cursor() as plain:  # a tuple row, whatever row factory `cur` has
        (plan,) = one(plain.execute(statement, params).fetchone())
    return search.plan_rows(plan)


def page_statement(cur: psycopg.Cursor[Any], query: DiamondSearch, after: Any = None) -> tuple[Any, Any]:
    """The page statement exactly as the API builds it on an answer-cache miss."""
    return search.page(query, PAGE, after, expected_rows(cur, query))
