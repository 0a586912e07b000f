"""Every DiamondQuery filter, checked against a brute-force filter over the served catalogue.

The expectation is derived independently of the emulator's filter code: from the items as served
(varied spellings mapped back to grades here, with their own table) and exact rational arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from emulator import Inventory
from emulator.filters import Band, StoneFilter, StoneOrder

SHAPES = {
    "RD": "ROUND",
    "ROUND BRILLIANT": "ROUND",
    "OV": "OVAL",
    "CU": "CUSHION",
    "CUSHION MODIFIED": "CUSHION",
    "PR": "PRINCESS",
    "EM": "EMERALD",
    "PS": "PEAR",
    "RAD": "RADIANT",
    "MQ": "MARQUISE",
    "AS": "ASSCHER",
    "HS": "HEART",
}
GRADES = {"EXCELLENT": "EX", "VERY GOOD": "VG", "GOOD": "G", "FAIR": "F", "POOR": "P"}
Item = dict[str, Any]


def shape(item: Item) -> str:
    raw: str = item["diamond"]["certificate"]["shape"].upper()
    return SHAPES.get(raw, raw)


def grade(item: Item, name: str) -> str | None:
    raw = item["diamond"]["certificate"][name]
    return None if raw is None else GRADES.get(raw.upper(), raw.upper())


def cert(item: Item, name: str) -> Any:
    return item["diamond"]["certificate"][name]


def carats(item: Item) -> Fraction:
    return Fraction(str(cert(item, "carats")))


def per_carat(item: Item) -> Fraction:
    return Fraction(item["price"], 100) / carats(item)


def availability(item: Item) -> str:
    served = item["diamond"]["availability"]
    return "ON HOLD" if served.upper() in {"HOLD", "ON HOLD"} else served


@pytest.fixture(scope="module")
def catalogue(emulator, module_feed) -> list[Item]:
    """Every stone as served, in creation order (the default order)."""
    items: list[Item] = module_feed.all_items()
    assert len(items) == emulator.inventory.truth() == len({i["diamond"]["id"] for i in items})
    return items


def _in(*values: str) -> Callable[[str | None], bool]:
    return lambda value: value in values


def _between(lo: float | None, hi: float | None) -> Callable[[Fraction], bool]:
    return lambda x: (lo is None or x >= Fraction(str(lo))) and (hi is None or x < Fraction(str(hi)))


CASES: list[tuple[str, dict[str, Any], Callable[[Item], bool]]] = [
    ("natural", {"labgrown": False}, lambda i: cert(i, "labgrown") is False),
    ("lab-grown", {"labgrown": True}, lambda i: cert(i, "labgrown") is True),
    ("shapes", {"shapes": ["OVAL", "pear"]}, lambda i: shape(i) in {"OVAL", "PEAR"}),
    ("shapes in other spellings", {"shapes": ["RD", "Cushion_Modified"]}, lambda i: shape(i) in {"ROUND", "CUSHION"}),
    (
        "sizes as a list",
        {"sizes": [{"from": 0.5, "to": 0.7}, {"from": 1, "to": 1.01}]},
        lambda i: _between(0.5, 0.7)(carats(i)) or _between(1, 1.01)(carats(i)),
    ),
    ("sizes as one object", {"sizes": {"from": 1, "to": 1.5}}, lambda i: _between(1, 1.5)(carats(i))),
    ("sizes open above", {"sizes": [{"from": 2}]}, lambda i: carats(i) >= 2),
    ("sizes open below", {"sizes": [{"to": 0.4}]}, lambda i: carats(i) < Fraction("0.4")),
    ("color", {"color": ["D", "E", "F"]}, lambda i: cert(i, "color") in {"D", "E", "F"}),
    ("clarity", {"clarity": ["VS1", "vs2"]}, lambda i: cert(i, "clarity") in {"VS1", "VS2"}),
    ("cut", {"cut": ["EX", "Very Good"]}, lambda i: grade(i, "cut") in {"EX", "VG"}),
    ("polish", {"polish": ["EXCELLENT"]}, lambda i: grade(i, "polish") == "EX"),
    ("symmetry", {"symmetry": ["VG", "G"]}, lambda i: grade(i, "symmetry") in {"VG", "G"}),
    ("has_image", {"has_image": True}, lambda i: i["diamond"]["image"] is not None),
    ("has_v360", {"has_v360": True}, lambda i: i["diamond"]["v360"] is not None),
    ("has_image false restricts nothing", {"has_image": False}, lambda i: True),
    ("availability", {"availability": ["AVAILABLE"]}, lambda i: availability(i) == "AVAILABLE"),
    ("availability on hold", {"availability": ["HOLD"]}, lambda i: availability(i) == "ON HOLD"),
    ("excludeFairPoorCuts", {"excludeFairPoorCuts": True}, lambda i: grade(i, "cut") not in {"F", "P"}),
    ("hide_memo", {"hide_memo": True}, lambda i: availability(i) != "MEMO"),
    ("dollar_value", {"dollar_value": {"from": 1000, "to": 5000}}, lambda i: 100_000 <= i["price"] < 500_000),
    (
        "dollar_per_carat",
        {"dollar_per_carat": {"from": 2000, "to": 4000}},
        lambda i: _between(2000, 4000)(per_carat(i)),
    ),
    ("dollar_per_carat open above", {"dollar_per_carat": {"from": 20000}}, lambda i: per_carat(i) >= 20000),
    ("dollar_per_carat open below", {"dollar_per_carat": {"to": 150}}, lambda i: per_carat(i) < 150),
    (
        "planner's band",
        {"labgrown": True, "dollar_per_carat": {"from": 100, "to": 200}},
        lambda i: cert(i, "labgrown") and _between(100, 200)(per_carat(i)),
    ),
    ("empty list restricts nothing", {"color": []}, lambda i: True),
    (
        "combined",
        {
            "labgrown": False,
            "shapes": ["ROUND"],
            "color": ["G", "H", "I"],
            "has_image": True,
            "sizes": [{"from": 0.3}],
            "excludeFairPoorCuts": True,
            "dollar_per_carat": {"to": 8000},
        },
        lambda i: (
            not cert(i, "labgrown")
            and shape(i) == "ROUND"
            and cert(i, "color") in {"G", "H", "I"}
            and i["diamond"]["image"] is not None
            and carats(i) >= Fraction("0.3")
            and grade(i, "cut") not in {"F", "P"}
            and per_carat(i) < 8000
        ),
    ),
]


@pytest.mark.parametrize(("query", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_filter_matches_brute_force(feed, catalogue, query, expected):
    want = [i["diamond"]["id"] for i in catalogue if expected(i)]
    assert want, "the case must select something to be meaningful"
    got = [i["diamond"]["id"] for i in feed.all_items(query)]
    assert got == want
    assert feed.count(query) == len(want)


def test_ids_take_stone_and_offer_ids(feed, catalogue):
    picked = catalogue[10:15] + catalogue[400:403]
    ids = [i["diamond"]["id"] for i in picked[:5]] + [i["id"] for i in picked[5:]]
    ids += ["00000000-0000-4000-8000-000000000000", "not-an-id"]
    got = {i["diamond"]["id"] for i in feed.all_items({"ids": ids})}
    assert got == {i["diamond"]["id"] for i in picked}


def test_certificate_numbers(feed, catalogue):
    picked = catalogue[100:106]
    numbers = [cert(i, "certNumber") for i in picked] + ["LG000000000", "123"]
    got = {i["diamond"]["id"] for i in feed.all_items({"certificate_numbers": numbers})}
    assert got == {i["diamond"]["id"] for i in picked}
    both = feed.all_items({"certificate_numbers": numbers, "ids": [picked[0]["diamond"]["id"]]})
    assert [i["diamond"]["id"] for i in both] == [picked[0]["diamond"]["id"]]


def _iso(ms: int, offset: timedelta = timedelta(0)) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone(offset)).isoformat(timespec="milliseconds")


@pytest.mark.parametrize("offset_hours", [0, 2])
def test_updated_range_against_columns(feed, emulator, offset_hours):
    inventory: Inventory = emulator.inventory
    stamps = inventory.columns.updated_ms
    lo, hi = int(np.percentile(stamps, 30)), int(np.percentile(stamps, 60))
    tz = timedelta(hours=offset_hours)
    got = {i["diamond"]["id"] for i in feed.all_items({"updated": {"from": _iso(lo, tz), "to": _iso(hi, tz)}})}
    assert got == set(inventory.stone_ids(np.flatnonzero((stamps >= lo) & (stamps < hi))))
    open_ended = feed.count({"updated": {"from": _iso(hi)}})
    assert open_ended == int(np.count_nonzero(stamps >= hi))


def test_updated_without_offset_is_utc_and_bad_timestamps_are_refused(feed, emulator):
    stamps = emulator.inventory.columns.updated_ms
    cut = int(np.median(stamps))
    naive = datetime.fromtimestamp(cut / 1000, UTC).replace(tzinfo=None).isoformat()
    assert feed.count({"updated": {"to": naive}}) == int(np.count_nonzero(stamps < cut))
    body = feed.post('{ diamonds_by_query_count(query: {updated: {from: "yesterday"}}) }', bearer=feed.token).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def _hand_made(price_cents: list[int], carats_h: list[int], labgrown: bool = False) -> Inventory:
    """Stones with chosen prices and weights; every other column from a generated inventory."""
    base = Inventory.generate(size=len(price_cents), seed=1)
    cols = base.columns
    cols.price_cents[:] = price_cents
    cols.carats_h[:] = carats_h
    cols.labgrown[:] = labgrown
    cols.availability[:] = 0
    return base


def test_ranges_are_half_open_exactly_on_both_query_paths():
    # $1000/ct exactly, a cent above, a cent below; 1.00 ct and 1.50 ct stones.
    inventory = _hand_made([100_000, 100_001, 99_999, 150_000], [100, 100, 100, 150])

    def count(**kwargs: Any) -> int:
        fast = StoneFilter(labgrown=False, **kwargs)
        slow = StoneFilter(labgrown=False, hide_memo=True, **kwargs)  # no memo stones: forces the mask path only
        assert not slow.is_price_band_only
        assert inventory.count(fast) == inventory.count(slow) == len(inventory.ordered(slow, StoneOrder()))
        return inventory.count(fast)

    assert count(dollar_per_carat=Band(1000, 1001)) == 3  # 1000, 1000.01 and (150_000 / 1.5) = 1000
    assert count(dollar_per_carat=Band(999, 1000)) == 1  # 999.99 only: `to` is exclusive
    assert count(dollar_per_carat=Band(1000, None)) == 3
    assert count(dollar_value=Band(1000, 1500)) == 2  # 100_000 and 100_001 cents
    assert count(carats_h=(Band(100, 150),)) == 3


def test_price_index_agrees_with_integer_masks_on_many_bands():
    inventory = Inventory.generate(size=30_000, seed=5)
    rng = np.random.default_rng(0)
    for _ in range(200):
        lo = int(rng.integers(0, 6000))
        band = Band(lo, lo + int(rng.integers(1, 400)))
        flag = bool(rng.integers(0, 2))
        fast = StoneFilter(labgrown=flag, dollar_per_carat=band)
        assert fast.is_price_band_only
        assert inventory.count(fast) == int(np.count_nonzero(fast.mask(inventory.columns)))
