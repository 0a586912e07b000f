"""Consolidation of payloads the catalogue cannot use: bounds, refused rows, delisting (issue 11, 2/5/6).

Raw rows are written straight into raw_stones/raw_pending (the fetch path is tested elsewhere), so
each test is one small batch or two.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from emulator.hostile import LONG_FIELDS
from shared.planning.partitions import Partition
from shared.runs import lifecycle
from shared.sync.bounds import MappingBounds
from shared.sync.consolidate import ConsolidationResult, consolidate
from shared.sync.finalize import finalize_run

FEED = "nivoda-natural"
RUN = uuid.uuid4()


def item(stone_id: str, **changes: Any) -> dict[str, Any]:
    """A clean Nivoda item; `changes` override item, diamond ("d_") or certificate ("c_") fields."""
    payload: dict[str, Any] = {
        "id": f"offer-{stone_id}",
        "price": 250_000,
        "diamond": {
            "id": stone_id,
            "availability": "AVAILABLE",
            "image": "https://img.example/x.jpg",
            "certificate": {
                "shape": "ROUND",
                "carats": 1.01,
                "color": "G",
                "clarity": "VS1",
                "lab": "GIA",
                "length": 6.4,
                "width": 6.38,
                "depth": 3.95,
                "depthPercentage": 61.8,
                "table": 57,
                "labgrown": False,
            },
        },
    }
    for key, value in changes.items():
        if key.startswith("c_"):
            payload["diamond"]["certificate"][key[2:]] = value
        elif key.startswith("d_"):
            payload["diamond"][key[2:]] = value
        else:
            payload[key] = value
    return payload


def load(pool: ConnectionPool, *payloads: dict[str, Any]) -> None:
    """Write payloads as raw rows of FEED (new or changed), queued for consolidation."""
    with pool.connection() as conn:
        for payload in payloads:
            text = json.dumps(payload, sort_keys=True)
            digest = hashlib.sha256(text.encode()).digest()
            stone_id = payload["diamond"]["id"]
            conn.execute(
                """INSERT INTO raw_stones (feed, stone_id, offer_id, payload, payload_hash, first_seen_run_id,
                                          last_seen_run_id)
                   VALUES (%s, %s, 'o', %s, %s, %s, %s)
                   ON CONFLICT (feed, stone_id) DO UPDATE SET payload = EXCLUDED.payload,
                       payload_hash = EXCLUDED.payload_hash""",
                (FEED, stone_id, text, digest, RUN, RUN),
            )
            conn.execute(
                """INSERT INTO raw_pending (feed, stone_id, payload_hash) VALUES (%s, %s, %s)
                   ON CONFLICT (feed, stone_id) DO UPDATE SET payload_hash = EXCLUDED.payload_hash""",
                (FEED, stone_id, digest),
            )


def run(pool: ConnectionPool, bounds: MappingBounds | None = None) -> ConsolidationResult:
    return consolidate(pool, FEED, worker="t", lab_grown_default=False, bounds=bounds)


def rejects(pool: ConnectionPool) -> dict[str, str]:
    with pool.connection() as conn:
        return dict(conn.execute("SELECT stone_id, reason FROM mapping_rejects").fetchall())


def catalogue(pool: ConnectionPool) -> dict[str, tuple[Any, ...]]:
    """stone_id -> (listed, delisted_reason, cost_cents)."""
    with pool.connection() as conn:
        rows = conn.execute("SELECT stone_id, delisted_at IS NULL, delisted_reason, cost_cents FROM diamonds")
        return {r[0]: r[1:] for r in rows}


def test_over_long_text_is_a_reject_naming_the_field_and_the_bound(pool) -> None:
    load(
        pool,
        item("long-fancy", c_f_color="PINK" * 5000),  # 20 kB: past the btree's limit on fancy_color
        item("long-name", d_supplier={"id": "s", "name": "x" * 201}),
        item("long-url", d_image="https://img.example/" + "a" * 2048),
        item("long-shape", c_shape="R" * 20_000),
        item("long-color", c_color="G" * 20_000),
        item("clean"),
    )
    result = run(pool)
    assert (result.processed, result.catalogued, result.rejected) == (6, 1, 5)
    reasons = rejects(pool)
    assert reasons["long-fancy"] == (
        "fancy_color has 20000 characters, more than the bound of 200 (mapped_text_max_chars)"
    )
    assert reasons["long-name"].startswith("supplier_name has 201 characters, more than the bound of 200")
    assert reasons["long-url"].startswith("image_url has 2068 characters, more than the bound of 2048")
    assert reasons["long-shape"] == "unknown shape '" + "R" * 60 + "'... (20000 characters)"
    assert reasons["long-color"].startswith("color has 20000 characters")
    assert set(catalogue(pool)) == {"clean"}


def test_a_row_the_database_refuses_is_isolated_and_the_rest_written(pool) -> None:
    # A refusal the mapping cannot foresee: a constraint that only the database knows about.
    with pool.connection() as conn:
        conn.execute("ALTER TABLE diamonds ADD CONSTRAINT no_victims CHECK (stone_id NOT LIKE 'victim%')")
    stones = [item(f"s{i:03}") for i in range(97)] + [item("victim-1"), item("victim-2"), item("s-last")]
    load(pool, *stones)
    result = run(pool)
    assert (result.processed, result.catalogued, result.rejected, result.refused) == (100, 98, 2, 2)
    assert result.new == 98
    reasons = rejects(pool)
    assert set(reasons) == {"victim-1", "victim-2"}
    assert reasons["victim-1"].startswith("refused by the database (23514): ")
    assert "no_victims" in reasons["victim-1"]
    assert len(catalogue(pool)) == 98
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_pending").fetchone() == (0,)  # nothing left to fail again


def test_a_trigger_refusal_is_isolated_too(pool) -> None:
    with pool.connection() as conn:
        conn.execute(
            """CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN IF NEW.stone_id = 'victim' THEN RAISE EXCEPTION 'not this one'; END IF; RETURN NEW; END $$;
               CREATE TRIGGER refuse BEFORE INSERT ON diamonds FOR EACH ROW EXECUTE FUNCTION refuse()"""
        )
    load(pool, item("a"), item("victim"), item("b"))
    result = run(pool)
    assert (result.catalogued, result.refused) == (2, 1)
    assert rejects(pool) == {"victim": "refused by the database (P0001): not this one"}


UNUSABLE: dict[str, dict[str, Any]] = {
    "unknown-shape": {"c_shape": "TRILLION-ISH"},
    "tiny": {"c_carats": 0.001},
    "absurd-price": {"price": 10**20},
    "free": {"price": 0},
}


def test_a_stone_that_turns_unusable_is_delisted_with_the_reason_and_relisted_when_usable(pool) -> None:
    load(pool, *(item(stone) for stone in UNUSABLE))
    assert run(pool).catalogued == len(UNUSABLE)

    load(pool, *(item(stone, **bad) for stone, bad in UNUSABLE.items()))
    result = run(pool)
    assert (result.rejected, result.delisted, result.catalogued) == (len(UNUSABLE), len(UNUSABLE), 0)
    listed = catalogue(pool)
    reasons = rejects(pool)
    for stone in UNUSABLE:
        on_sale, delisted_reason, _ = listed[stone]
        assert not on_sale, stone  # not sold at the old price
        assert delisted_reason == reasons[stone], stone

    # A run that saw these stones relists what it saw; not these: their current payload is rejected.
    run_id = uuid.uuid4()
    with pool.connection() as conn:
        lifecycle.create_run(
            conn, run_id=run_id, feed=FEED, kind="full", trigger="cli", instance_id=None, as_of=datetime.now(UTC)
        )
        lifecycle.save_plan(conn, run_id, [Partition(partition_no=0, dpc_from=0, dpc_to=None, expected_count=0)], {})
        conn.execute("UPDATE raw_stones SET last_seen_run_id = %s", (run_id,))
        assert finalize_run(conn, run_id)["relisted"] == 0
    assert not any(on_sale for on_sale, _, _ in catalogue(pool).values())

    # The feed recovers, at a new price: listed again, at the new data; the rejects describe now.
    load(pool, *(item(stone, price=260_000) for stone in UNUSABLE))
    result = run(pool)
    assert (result.catalogued, result.rejected) == (len(UNUSABLE), 0)
    assert catalogue(pool) == dict.fromkeys(UNUSABLE, (True, None, 260000))
    assert rejects(pool) == {}


def test_a_rejected_stone_never_catalogued_is_only_a_reject(pool) -> None:
    load(pool, item("bad", c_shape="BLOB"))
    result = run(pool)
    assert (result.rejected, result.delisted) == (1, 0)
    load(pool, item("bad"))
    run(pool)
    assert rejects(pool) == {}
    assert catalogue(pool) == {"bad": (True, None, 250_000)}


def test_implausible_carats_and_prices_are_rejected_with_field_and_bound(pool) -> None:
    load(
        pool,
        item("free", price=0),
        item("cheap", price=999, c_carats=1.0),  # $9.99/ct
        item("floor", price=1000, c_carats=1.0),  # $10/ct exactly: plausible
        item("huge", c_carats=999.99),
        item("speck", c_carats=0.001),
        item("dear", price=500_000_001, c_carats=1.0),
        item("nan", c_carats="NaN"),
    )
    result = run(pool)
    assert result.catalogued == 1
    reasons = rejects(pool)
    assert reasons["free"] == (
        "price '0' cents for 1.01 ct is below the plausible minimum of 1000 cents per carat"
        " (plausible_price_per_carat_min_cents)"
    )
    assert reasons["cheap"].startswith("price '999' cents for 1.00 ct is below the plausible minimum of 1000")
    assert reasons["huge"] == "carats '999.99' outside the plausible range 0.01..100 (plausible_carats_min/max)"
    assert reasons["speck"].startswith("carats '0.001' outside the plausible range")
    assert reasons["dear"].startswith("price '500000001' cents for 1.00 ct is above the plausible maximum")
    assert reasons["nan"].startswith("carats 'NaN' outside the plausible range")
    assert set(catalogue(pool)) == {"floor"}


def test_the_bounds_come_from_the_settings(pool) -> None:
    load(pool, item("six", c_carats=6), item("one"))
    bounds = replace(MappingBounds.from_settings(), plausible_carats_max=Decimal(5))
    run(pool, bounds)
    assert set(rejects(pool)) == {"six"}


def test_absurd_optional_numbers_map_to_null_and_the_stone_sells(pool) -> None:
    absurd = item(
        "odd",
        c_length=99.9,
        c_width=0.01,  # ratio 9,990: past ratio's numeric(6, 3), which used to fail the whole batch
        c_depth=1000,
        c_depthPercentage=250,
        c_table=0,
        c_crownAngle=120,
        c_pavAngle=45,
        d_delivery_time={"min_business_days": 10_000, "max_business_days": 3},
    )
    load(pool, absurd)
    assert run(pool).catalogued == 1
    with pool.connection() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT * FROM diamonds WHERE stone_id = 'odd'").fetchone()
    assert (row["length_mm"], row["width_mm"], row["depth_mm"]) == (Decimal("99.90"), Decimal("0.01"), None)
    assert row["ratio"] is None
    assert (row["depth_percent"], row["table_percent"], row["crown_angle"]) == (None, None, None)
    assert row["pavilion_angle"] == Decimal("45.00")
    assert (row["delivery_min_days"], row["delivery_max_days"]) == (None, 3)


@pytest.mark.parametrize(
    ("length", "width", "ratio"),
    [(6.4, 6.38, Decimal("1.003")), (12, 5, Decimal("2.400")), (5, 30, None), (0.001, 6, None)],
)
def test_ratio_is_bounded(pool, length, width, ratio) -> None:
    load(pool, item("r", c_length=length, c_width=width))
    run(pool)
    with pool.connection() as conn:
        assert conn.execute("SELECT ratio FROM diamonds").fetchone() == (ratio,)


# The emulator's hostile kinds that reach consolidation or stop at the feed boundary for a reason
# consolidation also has (an over-long id or shape); NUL, surrogates and duplicates are the boundary's.
CONSOLIDATION_KINDS = [
    *LONG_FIELDS,
    *("zero_price", "absurd_price", "tiny_carats", "huge_carats", "zero_carats", "unknown_shape"),
    "unknown_availability",
]


def test_stones_the_feed_turns_hostile_are_delisted_then_relisted_end_to_end(
    feed, run_sync, listed, database_url: str
) -> None:
    import httpx

    from emulator.config import FaultSettings

    first = run_sync(FEED)
    clean = listed(FEED)
    assert first["status"] == "succeeded"
    assert clean

    feed.faults.replace(FaultSettings(hostile_item_rate=0.1, hostile_kinds=CONSOLIDATION_KINDS))
    served = httpx.get(f"{feed.base_url}/_emulator/hostile").json()["stones"]
    hostile = {s["id"]: s["kind"] for s in served if s["id"] in clean}
    assert len(set(hostile.values())) > 20
    second = run_sync(FEED)
    assert second["status"] == "succeeded", second  # one 20 kB fancy colour no longer fails the run
    assert listed(FEED) == clean - set(hostile)  # none sold at its stale data
    with psycopg.connect(database_url) as conn:
        reasons: dict[str, str] = dict(conn.execute("SELECT stone_id, reason FROM mapping_rejects").fetchall())
        delisted: dict[str, str] = dict(
            conn.execute("SELECT stone_id, delisted_reason FROM diamonds WHERE delisted_at IS NOT NULL")
        )
        at_boundary = {r[0] for r in conn.execute("SELECT stone_id FROM feed_rejects")}
    assert set(delisted) == set(hostile)
    for stone, kind in hostile.items():
        if stone in reasons:
            assert delisted[stone] == reasons[stone], kind
        else:  # refused at the feed boundary: delisted there, with the boundary's reason
            assert stone in at_boundary, kind
            assert delisted[stone].startswith("feed reject: "), kind
        if kind == "long_fancy_color":
            assert reasons[stone].startswith("fancy_color has 20000 characters"), reasons[stone]

    feed.faults.replace(FaultSettings())
    third = run_sync(FEED)
    assert third["status"] == "succeeded"
    assert listed(FEED) == clean
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM mapping_rejects").fetchone() == (0,)
