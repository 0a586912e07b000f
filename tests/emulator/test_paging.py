"""Orders are stable, offset paging sees every stone once, and the production quirks of counts and pages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from emulator import FaultSettings

SUBSET = {"labgrown": True, "shapes": ["ROUND", "OVAL"]}
KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "price": lambda item: item["price"],
    "size": lambda item: item["diamond"]["certificate"]["carats"],
    "discount": lambda item: item["discount"],
}


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["diamond"]["id"] for i in items]


@pytest.fixture(scope="module")
def created(module_feed) -> list[str]:
    """The subset in creation order."""
    return _ids(module_feed.all_items(SUBSET, {"type": "createdAt", "direction": "ASC"}))


@pytest.mark.parametrize("kind", ["price", "size", "discount"])
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_orders_are_sorted_and_ties_keep_creation_order(feed, created, kind, direction):
    items = feed.all_items(SUBSET, {"type": kind, "direction": direction})
    assert sorted(_ids(items)) == sorted(created)
    rank = {stone: n for n, stone in enumerate(created)}
    key = KEYS[kind]
    sign = -1 if direction == "DESC" else 1
    expected = sorted(items, key=lambda i: (sign * key(i), rank[i["diamond"]["id"]]))
    assert _ids(items) == _ids(expected)
    assert len({key(i) for i in items}) < len(items), "the subset must contain ties to test them"


def test_created_desc_none_and_default_orders(feed, created):
    assert _ids(feed.all_items(SUBSET, {"type": "createdAt", "direction": "DESC"})) == created[::-1]
    assert _ids(feed.all_items(SUBSET, {"type": "none"})) == created
    assert _ids(feed.all_items(SUBSET)) == created


def test_short_pages_still_return_every_stone_exactly_once(feed, emulator, created):
    emulator.faults.replace(FaultSettings(short_page_rate=0.3))
    items = feed.all_items(SUBSET)
    assert _ids(items) == created
    assert not [n for n, c in Counter(_ids(items)).items() if c > 1]
    pages = feed.pages
    assert pages[-1] == 0, "only an empty page ends a partition"
    short_mid_stream = [n for n in pages[:-2] if n < 50]
    assert len(short_mid_stream) >= 3
    assert emulator.stats.snapshot()["short_pages"] >= len(short_mid_stream)


def test_short_pages_are_deterministic(feed, emulator):
    emulator.faults.replace(FaultSettings(short_page_rate=0.3))
    feed.all_items(SUBSET)
    first = list(feed.pages)
    feed.all_items(SUBSET)
    assert feed.pages == first


def test_total_count_is_count_minus_offset(feed):
    count = feed.count(SUBSET)
    assert feed.page(SUBSET, 0)["total_count"] == count
    assert feed.page(SUBSET, 120)["total_count"] == count - 120
    beyond = feed.page(SUBSET, count + 10)
    assert beyond == {"total_count": 0, "items": []}


def test_total_count_quirk_can_be_turned_off(feed, emulator):
    emulator.faults.replace(FaultSettings(total_count_minus_offset=False, short_page_rate=0.0))
    count = feed.count(SUBSET)
    assert feed.page(SUBSET, 120)["total_count"] == count


def test_count_ratio_scales_counts_but_never_paging(feed, emulator, created):
    emulator.faults.replace(FaultSettings(count_ratio=0.6, short_page_rate=0.0))
    assert feed.count(SUBSET) == round(0.6 * len(created))
    assert feed.page(SUBSET, 0)["total_count"] == round(0.6 * len(created))
    assert _ids(feed.all_items(SUBSET)) == created


def test_limit_zero_is_an_empty_page(feed):
    assert feed.page(SUBSET, 0, limit=0)["items"] == []
