"""Search over real HTTP: every filter and sort against answers computed in Python, cursor walks,
counts, fields, one stone, price history, ETags."""

from __future__ import annotations

import base64
import json
import uuid
from decimal import Decimal

import catalogue_rows
import psycopg
import pytest
from search_cases import FILTERS, SORTS, ids, listed

from shared.access.server_keys import ServerKeys
from shared.catalogue import cursor as cursors
from shared.catalogue import records
from shared.catalogue.query import DiamondSearch


@pytest.mark.parametrize(("params", "matches"), FILTERS, ids=[str(sorted(p)) for p, _ in FILTERS])
def test_every_filter_returns_exactly_the_matching_stones(client, catalogue, params, matches) -> None:
    expected = sorted((r for r in listed(catalogue) if matches(r)), key=lambda r: (r["price_cents"], r["diamond_id"]))
    assert expected, "the synthetic catalogue must contain matches"
    found = list(client.iter_search(**params, limit=200))
    assert [d["diamond_id"] for d in found] == ids(expected)
    first = client.search(**params, limit=1)
    assert first["page"]["count"] == len(expected)
    assert first["page"]["count_is_estimate"] is False


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
    # Supplier identity: the feed is named after the supplier, stone_id is the supplier's own id.
    assert not {"feed", "stone_id"} & set(full)
    # Supplier media URLs name its host: links through caratflow, or a flag (tests/api/test_media.py).
    assert not {"v360_url", "certificate_url"} & set(full)
    assert isinstance(full["has_v360"], bool)
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
    assert stone["diamond_id"] == str(row["diamond_id"])
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
    cheapest = first.json()["data"][0]
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE diamonds SET price_cents = price_cents + 1 WHERE diamond_id = %s", (cheapest["diamond_id"],)
        )
    changed = client.http.get("/api/v1/diamonds", params={"shape": "ROUND"}, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    # The answer is cached per dataset version: the new version must bring the new price, not the kept page.
    repriced = {d["diamond_id"]: d["price_cents"] for d in changed.json()["data"]}
    assert repriced.get(cheapest["diamond_id"], cheapest["price_cents"] + 1) == cheapest["price_cents"] + 1
    again = client.http.get("/api/v1/diamonds", params={"shape": "ROUND"})
    assert again.content == changed.content


def _reposition(cursor: str, value: str) -> str:
    version, payload, tag = cursor.split(".")
    document = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    edited = base64.urlsafe_b64encode(json.dumps({**document, "v": value}).encode()).decode().rstrip("=")
    return f"{version}.{edited}.{tag}"


def _minted(query: DiamondSearch, value: str) -> str:
    forged = ServerKeys(((1, b"guessed"),))
    return cursors.encode(query, value, uuid.uuid4(), forged)


def test_a_signed_cursor_out_of_its_column_range_is_refused_before_the_database() -> None:
    keys = ServerKeys(((1, b"k"),))
    query = DiamondSearch(sort="carats")
    for value in ("1E+999999", "NaN", "Infinity", "100000.00", "1.001"):
        with pytest.raises(cursors.InvalidCursor):
            cursors.decode(query, cursors.encode(query, value, uuid.uuid4(), keys), keys)
    by_price = DiamondSearch(sort="price_cents")
    with pytest.raises(cursors.InvalidCursor):
        cursors.decode(by_price, cursors.encode(by_price, str(2**63), uuid.uuid4(), keys), keys)
    assert cursors.decode(query, cursors.encode(query, "1.01", uuid.uuid4(), keys), keys).value == Decimal("1.01")


def test_cursor_from_another_search_or_garbage_is_refused(client, catalogue) -> None:
    cursor = client.search(shape=["ROUND"], limit=5)["page"]["next_cursor"]
    for params in (
        {"shape": "OVAL", "cursor": cursor},
        {"shape": "ROUND", "sort": "-price_cents", "cursor": cursor},
        {"cursor": "not-base64!"},
        {"cursor": "eyJmIjoxfQ"},
        # edited: another position under the same tag
        {"shape": "ROUND", "cursor": _reposition(cursor, "1E+999999")},
        # minted: a well-formed cursor for this very search, without the server key
        {"sort": "carats", "cursor": _minted(DiamondSearch(sort="carats"), "1E+999999")},
    ):
        response = client.http.get("/api/v1/diamonds", params=params)
        assert response.status_code == 400, params
        assert response.json()["type"] == "urn:caratflow:problem:invalid-cursor"


def test_vocabularies_match_the_database(database_url) -> None:
    from typing import get_args

    from shared.catalogue import vocabulary

    with psycopg.connect(database_url) as conn:
        stored: dict[str, list[str]] = dict(
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
