"""A quote: the price of one stone under a version (the active one unless named), by the Python evaluator.

The stone is a catalogue stone (by diamond_id, with what it costs and sells for today) or a hypothetical one
given whole. `RuleSet.price` is what the SQL pricing is held equal to (tests/pricing), so a quote is the
price repricing or consolidation would give the same stone.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel

from shared.pricing.repository import active_rule_set, rule_set
from shared.pricing.rules import StoneType, stone_type


class Stone(BaseModel):
    """What a rule looks at (shared/pricing/rules.py: Priceable), with the catalogue's names."""

    feed: str
    shape: str
    carats: Decimal
    cost_cents: int
    lab_grown: bool = False
    fancy_color: str | None = None
    lab: str | None = None
    color: str | None = None
    clarity: str | None = None


class Listed(BaseModel):
    """A catalogue stone's price today."""

    diamond_id: uuid.UUID
    price_cents: int
    pricing_version: int
    pricing_rule_id: int | None
    delisted: bool


class Quote(BaseModel):
    pricing_version: int
    stone_type: StoneType
    price_cents: int
    pricing_rule_id: int | None
    rule_name: str
    priority: int
    stone: Stone
    listed: Listed | None = None  # a catalogue stone's price today


class UnknownStone(LookupError):
    pass


def quote(conn: psycopg.Connection, stone: Stone, version: int | None = None, listed: Listed | None = None) -> Quote:
    """The price of `stone` under `version`; UnpricedStone when no rule matches, LookupError for no version."""
    rules = active_rule_set(conn) if version is None else rule_set(conn, version)
    priced = rules.price(stone)
    rule = next(rule for rule in rules.rules if rule.matches(stone))
    return Quote(
        pricing_version=rules.version,
        stone_type=stone_type(stone),
        price_cents=priced.price_cents,
        pricing_rule_id=priced.rule_id,
        rule_name=rule.name,
        priority=rule.priority,
        stone=stone,
        listed=listed,
    )


def quote_diamond(conn: psycopg.Connection, diamond_id: uuid.UUID, version: int | None = None) -> Quote:
    """The price of a catalogue stone (listed or not) under `version`, beside its price today."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT diamond_id, feed, shape, carats, cost_cents, lab_grown, fancy_color, lab, color, clarity,
                      price_cents, pricing_version, pricing_rule_id, delisted_at IS NOT NULL AS delisted
               FROM diamonds WHERE diamond_id = %s""",
            (diamond_id,),
        ).fetchone()
    if row is None:
        raise UnknownStone(f"no stone {diamond_id} in the catalogue")
    return quote(conn, Stone(**row), version, Listed(**row))
