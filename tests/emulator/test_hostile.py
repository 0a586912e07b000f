"""The hostile-item switch: a seeded set of stones served as a broken or hostile supplier would."""

from __future__ import annotations

import math
from typing import Any

import pytest

from emulator import FaultSettings
from emulator.cli import build_parser
from shared.feed.nivoda.queries import page_query

PAGE = page_query("header")


def _pages(feed, labgrown: bool) -> list[tuple[bytes, list[dict[str, Any]]]]:
    """Raw body and items of every page of one kind, paged to the empty page."""
    pages, offset = list[tuple[bytes, list[dict[str, Any]]]](), 0
    while True:
        variables = {"query": {"labgrown": labgrown}, "offset": offset, "limit": 50}
        response = feed.post(PAGE, variables, bearer=feed.token)
        assert response.status_code == 200
        items = response.json()["data"]["diamonds_by_query"]["items"]
        if not items:
            return pages
        pages.append((response.content, items))
        offset += len(items)


def _fields(item: dict[str, Any]) -> dict[str, object]:
    diamond = item["diamond"]
    return {
        **item,
        **{f"d.{k}": v for k, v in diamond.items()},
        **{f"c.{k}": v for k, v in diamond["certificate"].items()},
        **{f"s.{k}": v for k, v in diamond["supplier"].items()},
    }


@pytest.fixture
def hostile(feed, emulator):
    emulator.faults.replace(FaultSettings(hostile_item_rate=0.4, short_page_rate=0.0))
    listed = feed.http.get(f"{emulator.base_url}/_emulator/hostile").json()
    yield listed
    emulator.faults.replace(FaultSettings(short_page_rate=0.0))


def test_every_kind_is_served_as_named(feed, emulator, hostile):
    by_offer = {s["offer_id"]: s for s in hostile["stones"]}
    assert {s["kind"] for s in hostile["stones"]} == set(hostile["kinds"])  # 40% of 3000: every kind occurs
    pages = _pages(feed, False) + _pages(feed, True)
    bodies = b"".join(body for body, _ in pages)
    # What a broken encoder sends: bare NaN / Infinity literals, lone surrogates as escapes.
    for literal in (b":NaN", b":Infinity", b":-Infinity", b"\\ud800", b"\\udc00", b"\\u0000"):
        assert literal in bodies, literal
    seen = set()
    own_ids = {s["offer_id"]: s["id"] for s in hostile["stones"]}
    for _body, items in pages:
        page_ids = [i["diamond"]["id"] for i in items]
        for item in items:
            stone = by_offer.get(item["id"]) or next(
                (
                    s
                    for s in hostile["stones"]
                    if s["kind"] in ("surrogate_offer_id", "blank_offer_id", "long_offer_id")
                    and item["id"] not in by_offer
                    and s["id"] == item["diamond"]["id"]
                ),
                None,
            )
            if stone is None:
                continue
            kind, values = stone["kind"], _fields(item)
            seen.add(kind)
            if kind.startswith("long_"):
                assert any(isinstance(v, str) and len(v) == 20_000 for v in values.values()), kind
            elif kind.startswith("nan_"):
                assert any(isinstance(v, float) and math.isnan(v) for v in values.values()), kind
            elif "infinity" in kind:
                assert any(isinstance(v, float) and math.isinf(v) for v in values.values()), kind
            elif kind == "duplicate_id_in_page":
                assert item["diamond"]["id"] != own_ids[item["id"]]
                assert page_ids.count(item["diamond"]["id"]) >= 2  # the victim and its thieves
            elif kind == "duplicate_id_across_pages":
                assert item["diamond"]["id"] == stone["served_id"] != stone["id"]
            elif kind == "nul_key":
                assert "supplier_note\x00" in item["diamond"]
            elif kind in ("blank_stone_id", "whitespace_stone_id"):
                assert not item["diamond"]["id"].strip()
            elif kind == "absurd_price":
                assert item["price"] == 10**20
            elif kind == "list_price":
                assert isinstance(item["price"], list)
    assert seen >= set(hostile["kinds"]) - {"surrogate_offer_id", "blank_offer_id", "long_offer_id"}


def test_kinds_can_be_chosen_and_stay_fixed(feed, emulator):
    url = f"{emulator.base_url}/_emulator/hostile"
    emulator.faults.replace(FaultSettings(hostile_item_rate=0.1, hostile_kinds=["nan_price", "long_girdle"]))
    first = feed.http.get(url).json()["stones"]
    assert {s["kind"] for s in first} == {"nan_price", "long_girdle"}
    assert feed.http.get(url).json()["stones"] == first
    emulator.faults.replace(FaultSettings(hostile_item_rate=0.2, hostile_kinds=["nan_price", "long_girdle"]))
    assert {s["id"] for s in first} < {s["id"] for s in feed.http.get(url).json()["stones"]}
    refused = feed.http.put(f"{emulator.base_url}/_emulator/faults", json={"hostile_kinds": ["no_such_kind"]})
    assert refused.status_code == 422
    emulator.faults.replace(FaultSettings(short_page_rate=0.0))


def test_cli_help_shows_real_defaults():
    text = build_parser().format_help()
    assert "PydanticUndefined" not in text
    assert "(default: [])" in text
    args = build_parser().parse_args(["--failing-dpc-from", "100", "250", "--hostile-kinds", "nan_price"])
    assert (args.failing_dpc_from, args.hostile_kinds) == (["100", "250"], ["nan_price"])
