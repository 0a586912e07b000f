"""Search cases shared by the HTTP tests and the statement tests: filters with their Python predicate,
sort keys in Python, and helpers over catalogue rows (tests/support/catalogue_rows.py)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

CLARITY_RANK = {
    grade: n
    for n, grade in enumerate(
        ["FL", "IF", "VVS1", "VVS2", "VS1", "VS2", "SI1", "SI2", "SI3", "I1", "I2", "I3"], start=1
    )
}


Row = dict[str, Any]  # a catalogue row (tests/support/catalogue_rows.py)


def listed(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r["delisted_at"] is None]


def ids(rows: list[Row]) -> list[str]:
    return [str(r["diamond_id"]) for r in rows]


# Search parameters, and which rows they match.
FILTERS: list[tuple[dict[str, Any], Callable[[Row], bool]]] = [
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
    (
        {"shape": ["ROUND"], "carats_min": "1", "color": ["G", "H"], "lab_grown": "false"},
        lambda r: r["shape"] == "ROUND" and r["carats"] >= 1 and r["color"] in ("G", "H") and not r["lab_grown"],
    ),
]


SORTS: dict[str, Callable[[Row], Any]] = {
    "price_cents": lambda r: r["price_cents"],
    "price_per_carat_cents": lambda r: r["price_per_carat_cents"],
    "carats": lambda r: r["carats"],
    "color": lambda r: ord(r["color"]) - 67 if r["color"] else 99,
    "clarity": lambda r: CLARITY_RANK.get(r["clarity"], 99),
    "listed_at": lambda r: r["listed_at"],
}
