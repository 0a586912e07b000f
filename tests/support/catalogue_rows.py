"""Synthetic catalogue rows: every searchable attribute varied, for API tests that need exact answers,
or one plain stone, for tests about a row's life (listed, delisted, deleted) rather than its attributes.

The sync tests prove rows get into the catalogue; the API tests need rows whose every value is known
in Python, so that each filter's answer can be computed independently of the SQL under test.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from shared.db.rows import one

SHAPES = ["ROUND", "OVAL", "CUSHION", "PRINCESS", "EMERALD", "PEAR", "RADIANT", "MARQUISE", "ASSCHER", "HEART"]
COLORS = list("DEFGHIJKLM")
CLARITIES = ["FL", "IF", "VVS1", "VVS2", "VS1", "VS2", "SI1", "SI2", "I1"]
FINISHES = ["EXCELLENT", "VERY GOOD", "GOOD", "FAIR", None]
FLUORESCENCE = ["NONE", "FAINT", "MEDIUM", "STRONG", "VERY STRONG"]
LABS = ["GIA", "IGI", "HRD", "AGS", None]
FANCY = ["YELLOW", "PINK", "BLUE"]
AVAILABILITY = ["available", "available", "available", "on_hold", "memo"]
FEEDS = ["nivoda-natural", "nivoda-labgrown"]
COLUMNS = (
    "diamond_id",
    "feed",
    "stone_id",
    "offer_id",
    "shape",
    "carats",
    "color",
    "clarity",
    "cut",
    "polish",
    "symmetry",
    "fluorescence",
    "fancy_color",
    "lab_grown",
    "lab",
    "certificate_number",
    "ratio",
    "table_percent",
    "depth_percent",
    "availability",
    "cost_cents",
    "price_cents",
    "price_per_carat_cents",
    "pricing_version",
    "payload_hash",
    "last_seen_run_id",
    "listed_at",
    "delisted_at",
)


def make_rows(count: int, seed: int = 5) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    rows = []
    for n in range(count):
        carats = Decimal(rng.randrange(30, 500)) / 100
        # Few distinct prices, so that ties exercise the diamond_id tiebreak of every sort.
        price = rng.randrange(1, 400) * 2500
        fancy = rng.random() < 0.1
        rows.append(
            {
                "diamond_id": uuid.UUID(int=rng.getrandbits(128)),
                "feed": rng.choice(FEEDS),
                "stone_id": f"S{n:06d}",
                "offer_id": f"O{n:06d}",
                "shape": rng.choice(SHAPES),
                "carats": carats,
                "color": None if fancy else rng.choice(COLORS),
                "clarity": rng.choice(CLARITIES),
                "cut": rng.choice(FINISHES),
                "polish": rng.choice(FINISHES),
                "symmetry": rng.choice(FINISHES),
                "fluorescence": rng.choice(FLUORESCENCE),
                "fancy_color": rng.choice(FANCY) if fancy else None,
                "lab_grown": rng.random() < 0.5,
                "lab": rng.choice(LABS),
                "certificate_number": f"C{n}",
                "ratio": Decimal(rng.randrange(1000, 2000)) / 1000,
                "table_percent": Decimal(rng.randrange(5000, 7000)) / 100,
                "depth_percent": Decimal(rng.randrange(5500, 7500)) / 100,
                "availability": rng.choice(AVAILABILITY),
                "cost_cents": price * 8 // 10,
                "price_cents": price,
                "price_per_carat_cents": round(price / carats),
                "pricing_version": 1,
                "payload_hash": hashlib.sha256(str(n).encode()).digest(),
                "last_seen_run_id": uuid.UUID(int=1),
                "listed_at": base + timedelta(minutes=rng.randrange(0, 600)),
                "delisted_at": base + timedelta(days=1) if rng.random() < 0.05 else None,
            }
        )
    return rows


def insert(url: str, rows: list[dict[str, Any]]) -> None:
    statement = f"COPY diamonds ({', '.join(COLUMNS)}) FROM STDIN"
    with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[column] for column in COLUMNS])


# The attributes of a plain stone: any valid value, the same for every one.
PLAIN = {
    "shape": "ROUND",
    "carats": Decimal("1.00"),
    "lab_grown": False,
    "availability": "available",
    "cost_cents": 100000,
    "price_cents": 120000,
    "price_per_carat_cents": 120000,
    "pricing_version": 1,
}


def insert_plain(
    conn: psycopg.Connection,
    feed: str,
    stone_id: str,
    *,
    last_seen_run_id: uuid.UUID,
    delisted_at: datetime | None = None,
    payload_hash: bytes = b"\x00",
) -> uuid.UUID:
    """One plain stone of `feed` (offer id `o-<stone_id>`) in the caller's transaction; its diamond_id."""
    row = {
        **PLAIN,
        "feed": feed,
        "stone_id": stone_id,
        "offer_id": f"o-{stone_id}",
        "payload_hash": payload_hash,
        "last_seen_run_id": last_seen_run_id,
        "delisted_at": delisted_at,
    }
    statement = sql.SQL("INSERT INTO diamonds ({}) VALUES ({}) RETURNING diamond_id").format(
        sql.SQL(", ").join(map(sql.Identifier, row)), sql.SQL(", ").join(sql.Placeholder() * len(row))
    )
    diamond_id: uuid.UUID = one(conn.execute(statement, tuple(row.values())).fetchone())[0]
    return diamond_id
