"""Search over real HTTP: every filter and sort against answers computed in Python, cursor walks,
counts, fields, one stone, price history, ETags."""

from __future__ import annotations

from decimal import Decimal

import catalogue_rows
import psycopg
import pytest

from shared.catalogue import records

CLARITY_RANK = {
    grade: n
    for n, grade in enumerate(
        ["FL", "IF", "VVS1", "VVS2", "VS1", "VS2", "SI1", "SI2", "SI3", "I1", "I2", "I3"], start=1
    )
}


def listed(rows):
    return [r for r in rows if r["delisted_at"] is None]


def ids(rows):
    return [str(r["diamond_id"]) for r in rows]


FILTERS = [
    ({"shape": ["OVAL", "PEAR"]}, lambda r: r["shape"] in ("OVAL", "PEAR")),
    ({"carats_min": "1.00", "carats_max": "1.50"}, lambda r: Decimal("1") <= r["carats"] <= Decimal("1.5")),
    ({"color": ["D", "E"]}, lambda r: r["color"] in ("D", "E")),
    ({"clarity": ["VS1", "VS2"]}, lambda r: r["clarity"] in ("VS1", "VS2")),
    ({"cut": ["EXCELLENT"]}, lambda r: r["cut"] == "EXCELLENT"),
    ({"polish": ["VERY GOOD", "GOOD"]}, lambda r: r["polish"] in ("VERY GOOD", "GOOD")),
    ({"symmetry": ["FAIR"]}, lambda r: r["symmetry"] == "FAIR"),
    ({"fluorescence": ["NONE", "FAINT"]}, lambda r: r["fluorescence"] in ("NONE", "FAINT")),
    ({"lab": ["GIA"]}, lambda r: r["lab"] == "GIA"),
    ({"lab_grown": "true"}, lambda r: r["lab_grown"]),
    ({"lab_grown": "false"}, lambda r: not r["lab_grown"]),
    ({"fancy": "true"}, lambda r: r["fancy_color"] is not None),
    ({"fancy": "false"}, lambda r: r["fancy_color"] is None),
    ({"fancy_color": ["pink"]}, lambda r: r["fancy_color"] == "PINK"),
    ({"price_cents_min": 100000, "price_cents_max": 200000}, lambda r: 100000 <= r["price_cents"] <= 200000),
    ({"price_per_carat_cents_max": 150000}, lambda r: r["price_per_carat_cents"] <= 150000),
    ({"ratio_min": "1.2", "ratio_max": "1.4"}, lambda r: Decimal("1.2") <= r["ratio"] <= Decimal("1.4")),
    ({"table_percent_min": "55", "table_percent_max": "60"}, lambda r: 55 <= r["table_percent"] <= 60),
    ({"depth_percent_min": "60", "depth_percent_max": "62.5"}, lambda r: 60 <= r["depth_percent"] <= Decimal("62.5")),
    ({"availability": ["on_hold", "memo"]}, lambda r: r["availability"] in ("on_hold", "memo")),
    ({"feed": ["nivoda-labgrown"]}, lambda r: r["feed"] == "nivoda-labgrown"),
    (
        {"shape": ["ROUND"], "carats_min": "1", "color": ["G", "H"], "lab_grown": "false"},
        lambda r: r["shape"] == "ROUND" and r["carats"] >= 1 and r["color"] in ("G", "H") and not r["lab_grown"],
    ),
]


@pytest.mark.parametrize(("params", "matches"), FILTERS, ids=[str(sorted(p)) for p, _ in FILTERS])
def test_every_filter_returns_exactly_the_matching_stones(client, catalogue, params, matches) -> None:
    expected = sorted((r for r in listed(catalogue) if matches(r)), key=lambda r: (r["price_cents"], r["diamond_id"]))
    assert expected, "the synthetic catalogue must contain matches"
    found = list(client.iter_search(**params, limit=200))
    assert [d["diamond_id"] for d in found] == ids(expected)
    first = client.search(**params, limit=1)
    assert first["page"]["count"] == len(expected)
    assert first["page"]["count_is_estimate"] is False


SORTS = {
    "price_cents": lambda r: r["price_cents"],
    "price_per_carat_cents": lambda r: r["price_per_carat_cents"],
    "carats": lambda r: r["carats"],
    "color": lambda r: ord(r["color"]) - 67 if r["color"] else 99,
    "clarity": lambda r: CLARITY_RANK.get(r["clarity"], 99),
    "listed_at": lambda r: r["listed_at"],
}


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
@pytest.mark.parametrize("column", sorted(SORTS))
def test_cursor_walk_returns_every_stone_once_in_order(client, catalogue, column, descending) -> None:
    key = SORTS[column]
    expected = sorted(listed(catalogue), key=lambda r: (key(r), r["diamond_id"]), reverse=descending)
    walked = list(client.iter_search(sort=f"-{column}" if descending else column, limit=97))
    assert [d["diamond_id"] for d in walked] == ids(expected)


def test_delisted_stones_only_when_asked(client, catalogue) -> None:
    delisted = {str(r["diamond_id"]) for r in catalogue if r["delisted_at"] is not None}
    assert delisted
    default = {d["diamond_id"] for d in client.iter_search(limit=200)}
    everything = {d["diamond_id"] for d in client.iter_search(limit=200, include_delisted="true")}
    assert not default & delisted
    assert everything == default | delisted
    assert len(everything) == len(catalogue)


def test_counts_beyond_the_cap_are_estimates(api, client, catalogue) -> None:
    api.app.state.api.settings = api.settings.model_copy(update={"api_count_cap": 100})
    page = client.search(limit=1)
    assert page["page"]["count_is_estimate"] is True
    assert page["page"]["count"] > 100
    narrow = client.search(limit=1, shape=["HEART"], color=["D"])
    expected = len([r for r in listed(catalogue) if r["shape"] == "HEART" and r["color"] == "D"])
    assert narrow["page"] == {**narrow["page"], "count": expected, "count_is_estimate": False}


def test_fields_choose_slim_or_full_records_and_never_costs(client, catalogue) -> None:
    slim = client.search(limit=2)["data"][0]
    full = client.search(limit=2, fields="full")["data"][0]
    assert list(slim) == list(records.SLIM)
    assert list(full) == list(records.FULL)
    assert "cost_cents" not in full
    assert "supplier_name" not in full
    assert isinstance(slim["price_cents"], int)
    assert isinstance(slim["carats"], str)


def test_one_stone_and_its_price_history(client, catalogue, database_url) -> None:
    row = listed(catalogue)[0]
    with psycopg.connect(database_url) as conn:
        for minute, (old, new) in enumerate(((None, 1000), (1000, 1500), (1500, 1200))):
            conn.execute(
                """INSERT INTO price_history (diamond_id, run_id, new_cost_cents, old_price_cents, new_price_cents,
                   pricing_version, changed_at) VALUES (%s, %s, 1, %s, %s, 1, now() + make_interval(mins => %s))""",
                (row["diamond_id"], row["last_seen_run_id"], old, new, minute),
            )
    stone = client.diamond(str(row["diamond_id"]))
    assert stone["stone_id"] == row["stone_id"]
    assert stone["price_cents"] == row["price_cents"]
    history = client.price_history(str(row["diamond_id"]))["data"]
    assert [(h["old_price_cents"], h["new_price_cents"]) for h in history] == [(1500, 1200), (1000, 1500), (None, 1000)]


def test_unknown_and_delisted_stones_are_404_unless_asked(client, catalogue) -> None:
    import httpx

    gone = next(r for r in catalogue if r["delisted_at"] is not None)
    for path in (f"/api/v1/diamonds/{gone['diamond_id']}", "/api/v1/diamonds/00000000-0000-0000-0000-000000000000"):
        response = client.http.get(path)
        assert response.status_code == 404
        assert response.json()["type"] == "urn:caratflow:problem:unknown-diamond"
    assert client.http.get(f"/api/v1/diamonds/{gone['diamond_id']}?include_delisted=true").status_code == 200
    with pytest.raises(httpx.HTTPStatusError) as bad:
        client.diamond("not-a-uuid")
    assert bad.value.response.status_code == 400


def test_etag_revalidation_gets_304_until_the_catalogue_changes(client, catalogue, database_url) -> None:
    first = client.http.get("/api/v1/diamonds", params={"shape": "ROUND"})
    etag = first.headers["etag"]
    assert first.status_code == 200
    assert first.headers["cache-control"] == "private, no-cache"
    again = client.http.get("/api/v1/diamonds", params={"shape": "ROUND"}, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE diamonds SET price_cents = price_cents + 1 WHERE stone_id = 'S000001'")
    changed = client.http.get("/api/v1/diamonds", params={"shape": "ROUND"}, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag


def test_cursor_from_another_search_or_garbage_is_refused(client, catalogue) -> None:
    cursor = client.search(shape=["ROUND"], limit=5)["page"]["next_cursor"]
    for params in (
        {"shape": "OVAL", "cursor": cursor},
        {"shape": "ROUND", "sort": "-price_cents", "cursor": cursor},
        {"cursor": "not-base64!"},
        {"cursor": "eyJmIjoxfQ"},
    ):
        response = client.http.get("/api/v1/diamonds", params=params)
        assert response.status_code == 400, params
        assert response.json()["type"] == "urn:caratflow:problem:invalid-cursor"


def test_vocabularies_match_the_database(database_url) -> None:
    from typing import get_args

    from shared.catalogue import vocabulary

    with psycopg.connect(database_url) as conn:
        stored = dict(
            conn.execute(
                "SELECT vocabulary, array_agg(DISTINCT canonical ORDER BY canonical) FROM grade_aliases GROUP BY 1"
            ).fetchall()
        )
    for name, literal in (
        ("shape", vocabulary.Shape),
        ("color", vocabulary.Color),
        ("clarity", vocabulary.Clarity),
        ("finish", vocabulary.Finish),
        ("fluorescence", vocabulary.Fluorescence),
        ("lab", vocabulary.Lab),
        ("availability", vocabulary.Availability),
    ):
        assert sorted(get_args(literal)) == stored[name], name
    assert list(get_args(vocabulary.Shape)) == catalogue_rows.SHAPES
