"""The rule model and the schema refuse the same incomplete rules; version 1 prices as before 0013; the
SQL definition stays a plain expression PostgreSQL inlines."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pydantic import ValidationError

from shared.pricing.repository import active_rule_set
from shared.pricing.rules import PriceAdjustments, PricingRule
from shared.pricing.sql import price_of

REFUSED: list[dict[str, Any]] = [
    {"labs": []},
    {"colors": []},
    {"clarities": []},
    {"shapes": []},
    {"rounding": "sometimes"},
    {"rounding": "multiple"},
    {"rounding": "multiple", "rounding_step_cents": 0},
    {"rounding": "dollar", "rounding_step_cents": 100},
    {"rounding": "none", "rounding_ending_cents": 99},
    {"rounding": "charm", "rounding_step_cents": 100},
    {"rounding": "charm", "rounding_step_cents": 100, "rounding_ending_cents": 100},
    {"rounding": "charm", "rounding_step_cents": 100, "rounding_ending_cents": -1},
    {"floor_cents": -1},
    {"cost_min_cents": -1},
    {"cost_max_cents": -1},
    {"floor_percent": Decimal("-0.001")},
]
ACCEPTED: list[dict[str, Any]] = [
    {"labs": ["GIA"], "colors": ["D", "E"], "clarities": ["VS1"]},
    {"rounding": "none"},
    {"rounding": "dollar"},
    {"rounding": "multiple", "rounding_step_cents": 1000},
    {"rounding": "charm", "rounding_step_cents": 100, "rounding_ending_cents": 99},
    {"floor_cents": 0, "floor_percent": Decimal(0)},
]


def _insert_rule(conn: psycopg.Connection, fields: dict[str, Any]) -> None:
    # Into a draft: the rules of an active set (version 1) never change (migration 0014).
    conn.execute("INSERT INTO pricing_rule_sets (pricing_version) VALUES (2)")
    columns = ["pricing_version", "priority", "name", *fields]
    conn.execute(
        sql.SQL("INSERT INTO pricing_rules ({}) VALUES ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ").join(sql.Placeholder() * len(columns))
        ),
        [2, 5, "test", *fields.values()],
    )


@pytest.mark.parametrize("fields", REFUSED, ids=str)
def test_an_incomplete_rule_is_refused_by_model_and_schema(database_url: str, fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PricingRule(priority=5, name="test", **fields)
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        _insert_rule(conn, fields)


@pytest.mark.parametrize("fields", ACCEPTED, ids=str)
def test_a_complete_rule_is_accepted_by_model_and_schema(database_url: str, fields: dict[str, Any]) -> None:
    PricingRule(priority=5, name="test", **fields)
    with psycopg.connect(database_url) as conn:
        _insert_rule(conn, fields)


def test_set_defaults_are_checked_alike(database_url: str) -> None:
    with pytest.raises(ValidationError):
        PriceAdjustments(rounding="charm", rounding_step_cents=10, rounding_ending_cents=10)
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            """INSERT INTO pricing_rule_sets (pricing_version, rounding, rounding_step_cents, rounding_ending_cents)
               VALUES (2, 'charm', 10, 10)"""
        )


def test_a_rules_own_rounding_and_floor_win_over_the_sets() -> None:
    defaults = PriceAdjustments(rounding="dollar", floor_percent=Decimal(10))
    own = PricingRule(priority=1, name="own", rounding="none", floor_cents=0).terms(defaults)
    inherited = PricingRule(priority=2, name="inherited").terms(defaults)
    assert (own.rounding, own.floor_cents, own.floor_percent) == ("none", 0, None)
    assert (inherited.rounding, inherited.floor_cents, inherited.floor_percent) == ("dollar", None, Decimal(10))


# The pricing of consolidation before migration 0013, kept here to prove version 1 prices as it did.
BEFORE_0013 = """
SELECT rule.rule_id, greatest(0, round(s.cost_cents * (1 + rule.markup_percent / 100) + rule.markup_cents))::bigint
FROM stones s
LEFT JOIN LATERAL (
    SELECT r.rule_id, r.markup_percent, r.markup_cents
    FROM pricing_rules r
    WHERE r.pricing_version = 1
      AND (r.stone_type IS NULL OR r.stone_type = CASE WHEN s.lab_grown THEN 'lab_grown'
                                                       WHEN s.fancy_color IS NOT NULL THEN 'fancy'
                                                       ELSE 'natural' END)
      AND (r.feed IS NULL OR r.feed = s.feed)
      AND (r.shapes IS NULL OR s.shape = ANY (r.shapes))
      AND (r.carats_min IS NULL OR s.carats >= r.carats_min)
      AND (r.carats_max IS NULL OR s.carats < r.carats_max)
      AND (r.cost_min_cents IS NULL OR s.cost_cents >= r.cost_min_cents)
      AND (r.cost_max_cents IS NULL OR s.cost_cents < r.cost_max_cents)
    ORDER BY r.priority
    LIMIT 1
) AS rule ON true
ORDER BY s.stone_no
"""

STONES = """
CREATE TEMP TABLE stones AS
SELECT n AS stone_no, 'nivoda-natural'::text AS feed, 'ROUND'::text AS shape,
       (0.01 * (1 + n % 400))::numeric(7, 2) AS carats, (n::bigint * 7919 % 300000) AS cost_cents,
       n % 3 = 0 AS lab_grown, CASE WHEN n % 7 = 0 THEN 'YELLOW' END AS fancy_color,
       'GIA'::text AS lab, 'G'::text AS color, 'VS1'::text AS clarity
FROM generate_series(1, 20000) AS n
"""


def test_version_1_prices_as_before(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(STONES)
        before = conn.execute(BEFORE_0013).fetchall()
        query = sql.SQL(
            "SELECT price.pricing_rule_id, price.price_cents FROM stones s LEFT JOIN LATERAL {} AS price ON true"
            " ORDER BY s.stone_no"
        ).format(price_of(active_rule_set(conn), "s"))
        assert conn.execute(query).fetchall() == before
        # Every rule of version 1 priced some stone, but its catch-all, which follows a rule per stone type.
        assert len({rule_id for rule_id, _ in before}) == 6


def test_the_price_is_inlined_into_the_query(database_url: str) -> None:
    """No function call per stone: what keeps a 1M-stone preview within seconds."""
    with psycopg.connect(database_url) as conn:
        conn.execute(STONES)
        query = sql.SQL("EXPLAIN VERBOSE SELECT price.* FROM stones s LEFT JOIN LATERAL {} AS price ON true").format(
            price_of(active_rule_set(conn), "s")
        )
        plan = "\n".join(line for (line,) in conn.execute(query))
    assert "caratflow_charge" not in plan
    assert "caratflow_stone_type" not in plan
    assert "SubPlan" not in plan
