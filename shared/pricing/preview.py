"""What a version would do to the listed catalogue, before it applies: in SQL, over every listed stone.

Two statements, each one parallel scan of `diamonds` pricing every listed stone with `price_of` (the
definition repricing applies): an aggregate grouped by stone type and rule (a handful of groups, from
which the totals, the per-type and the per-rule effects are summed here), and the largest changes (a
top-N sort). Both read one snapshot, so they describe the same catalogue. Any version can be previewed:
a draft before activating it, a retired one before reverting to it.

"Before" is each stone's current price, whatever version set it; "after" is its price under the
previewed version. A stone no rule of the version matches counts as unpriced, not as changed, and adds
nothing to the value after (validation reports such a set as an error before it can be activated).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from pydantic import BaseModel, computed_field

from shared.pricing.repository import rule_set
from shared.pricing.rules import RuleSet, StoneType
from shared.pricing.sql import price_of

_COUNTS = ("stones", "changed", "up", "down", "unpriced", "value_before_cents", "value_after_cents")

_EFFECTS = """
SELECT caratflow_stone_type(d.lab_grown, d.fancy_color) AS stone_type, p.pricing_rule_id,
       count(*) AS stones,
       count(*) FILTER (WHERE p.price_cents <> d.price_cents) AS changed,
       count(*) FILTER (WHERE p.price_cents > d.price_cents) AS up,
       count(*) FILTER (WHERE p.price_cents < d.price_cents) AS down,
       count(*) FILTER (WHERE p.price_cents IS NULL) AS unpriced,
       coalesce(sum(d.price_cents), 0) AS value_before_cents,
       coalesce(sum(p.price_cents), 0) AS value_after_cents
FROM diamonds d LEFT JOIN LATERAL {price} AS p ON true
WHERE d.delisted_at IS NULL
GROUP BY 1, 2
"""

_LARGEST = """
SELECT d.diamond_id, caratflow_stone_type(d.lab_grown, d.fancy_color) AS stone_type, d.cost_cents, d.price_cents,
       p.price_cents AS new_price_cents, p.pricing_rule_id
FROM diamonds d JOIN LATERAL {price} AS p ON true
WHERE d.delisted_at IS NULL AND p.price_cents <> d.price_cents
ORDER BY abs(p.price_cents - d.price_cents) DESC, d.diamond_id
LIMIT %s
"""


class Effect(BaseModel):
    """What the version does to a group of listed stones."""

    stones: int = 0
    changed: int = 0  # priced differently (up + down)
    up: int = 0
    down: int = 0
    unpriced: int = 0  # no rule of the version matches them
    value_before_cents: int = 0
    value_after_cents: int = 0  # of the stones the version prices

    @computed_field  # type: ignore[prop-decorator]
    @property
    def value_delta_cents(self) -> int:
        return self.value_after_cents - self.value_before_cents

    def add(self, row: dict[str, Any]) -> None:
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + int(row[name]))


class RuleEffect(Effect):
    pricing_rule_id: int | None  # None: the stones no rule matches
    priority: int | None
    name: str | None


class StoneChange(BaseModel):
    diamond_id: UUID
    stone_type: StoneType
    cost_cents: int
    price_cents: int  # today's
    new_price_cents: int
    change_cents: int
    pricing_rule_id: int
    rule_name: str


class Preview(BaseModel):
    pricing_version: int
    total: Effect
    by_stone_type: dict[StoneType, Effect]
    by_rule: list[RuleEffect]  # in priority order, then the unpriced stones if any
    largest: list[StoneChange]  # by size of the change in cents, largest first
    elapsed_ms: int


def preview(conn: psycopg.Connection, version: int, *, largest: int = 20) -> Preview:
    """The effect of pricing the listed catalogue with `version`; LookupError if there is no such version."""
    started = time.monotonic()
    outermost = conn.info.transaction_status == TransactionStatus.IDLE
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        if outermost:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        rules = rule_set(conn, version)
        price = price_of(rules, "d")
        groups = cur.execute(sql.SQL(_EFFECTS).format(price=price)).fetchall()
        changes = cur.execute(sql.SQL(_LARGEST).format(price=price), (largest,)).fetchall()
    total, by_type, by_rule = Effect(), defaultdict[StoneType, Effect](Effect), _rule_effects(rules)
    for row in groups:
        total.add(row)
        by_type[row["stone_type"]].add(row)
        by_rule[row["pricing_rule_id"]].add(row)
    names = {rule.rule_id: rule.name for rule in rules.rules}
    return Preview(
        pricing_version=version,
        total=total,
        by_stone_type=dict(by_type),
        by_rule=[effect for effect in by_rule.values() if effect.pricing_rule_id is not None or effect.stones],
        largest=[
            StoneChange(
                **row, change_cents=row["new_price_cents"] - row["price_cents"], rule_name=names[row["pricing_rule_id"]]
            )
            for row in changes
        ],
        elapsed_ms=round((time.monotonic() - started) * 1000),
    )


def _rule_effects(rules: RuleSet) -> dict[int | None, RuleEffect]:
    """An empty effect per rule, in priority order (a rule that prices nothing shows as such), and one for
    the stones no rule matches."""
    effects: dict[int | None, RuleEffect] = {
        rule.rule_id: RuleEffect(pricing_rule_id=rule.rule_id, priority=rule.priority, name=rule.name)
        for rule in rules.rules
    }
    effects[None] = RuleEffect(pricing_rule_id=None, priority=None, name=None)
    return effects
