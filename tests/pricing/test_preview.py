"""Preview in SQL against the Python evaluator, stone by stone, over a small real catalogue."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from catalogue_rows import insert, make_rows

from shared.pricing import sets
from shared.pricing.audit import Actor
from shared.pricing.preview import Effect, preview
from shared.pricing.rules import PriceAdjustments, PricingRule, UnpricedStone, stone_type

RULES = [
    PricingRule(
        priority=10, name="big lab-grown", stone_type="lab_grown", carats_min=Decimal(2), markup_percent=Decimal(-20)
    ),
    PricingRule(
        priority=20,
        name="lab-grown",
        stone_type="lab_grown",
        markup_percent=Decimal(40),
        rounding="charm",
        rounding_step_cents=1000,
        rounding_ending_cents=999,
    ),
    PricingRule(
        priority=30,
        name="GIA D-F",
        stone_type="natural",
        labs=["GIA"],
        colors=["D", "E", "F"],
        markup_percent=Decimal("27.5"),
        floor_percent=Decimal(30),
    ),
    PricingRule(priority=40, name="never", stone_type="natural", feed="no such feed", markup_cents=1),
    PricingRule(priority=50, name="natural", stone_type="natural", markup_percent=Decimal(25), markup_cents=-2000),
]  # fmt: skip  (no rule for fancy stones: they come out unpriced)


def test_preview_equals_pricing_every_listed_stone_in_python(database_url: str) -> None:
    rows = make_rows(1500, seed=13)
    insert(database_url, rows)
    with psycopg.connect(database_url, autocommit=True) as conn:
        draft = sets.create(
            conn, Actor.operator("t"), sets.RuleSetContent(rules=RULES, defaults=PriceAdjustments(rounding="dollar"))
        )
        found = preview(conn, draft.pricing_version, largest=25)
    rules = draft.rule_set()
    names = {rule.rule_id: rule.name for rule in rules.rules}

    expected: dict[Any, Counter[str]] = defaultdict(Counter)
    changes = []
    for row in rows:
        if row["delisted_at"] is not None:
            continue
        stone = SimpleNamespace(**row)
        kind = stone_type(stone)
        try:
            priced = rules.price(stone)
        except UnpricedStone:
            unpriced: tuple[Any, ...] = ("total", ("type", kind), ("rule", None))
            for group in unpriced:
                expected[group].update(stones=1, unpriced=1, value_before_cents=row["price_cents"])
            continue
        new, old = priced.price_cents, row["price_cents"]
        effect = Counter(stones=1, changed=new != old, up=new > old, down=new < old, value_before_cents=old,
                         value_after_cents=new)  # fmt: skip
        priced_groups: tuple[Any, ...] = ("total", ("type", kind), ("rule", names[priced.rule_id]))
        for group in priced_groups:
            expected[group].update(effect)
        if new != old:
            changes.append((abs(new - old), str(row["diamond_id"]), new, priced.rule_id))

    def counts(effect: Any) -> Counter[str]:
        # Counters compare missing counts as zeros
        return Counter(effect.model_dump(include=set(Effect.model_fields)))

    assert counts(found.total) == expected["total"]
    assert (
        found.total.value_delta_cents
        == expected["total"]["value_after_cents"] - expected["total"]["value_before_cents"]
    )
    assert {kind: counts(effect) for kind, effect in found.by_stone_type.items()} == {
        kind: expected["type", kind] for kind in ("natural", "lab_grown", "fancy")
    }
    by_rule = {effect.name: counts(effect) for effect in found.by_rule}
    assert by_rule == {name: expected["rule", name] for name in [*(rule.name for rule in RULES), None]}
    assert [effect.name for effect in found.by_rule] == [rule.name for rule in RULES] + [None]
    assert by_rule["never"] == Counter()  # a rule that prices nothing shows as such

    changes.sort(key=lambda change: (-change[0], change[1]))
    assert [(str(c.diamond_id), c.new_price_cents, c.pricing_rule_id) for c in found.largest] == [
        (diamond, new, rule_id) for _, diamond, new, rule_id in changes[:25]
    ]
    assert all(c.change_cents == c.new_price_cents - c.price_cents for c in found.largest)
    # the catalogue exercises every count
    assert all(expected["total"][name] > 0 for name in ("unpriced", "up", "down"))


def test_preview_of_a_version_that_does_not_exist(database_url: str) -> None:
    with psycopg.connect(database_url) as conn, pytest.raises(LookupError):
        preview(conn, 99)


def test_preview_inside_the_callers_transaction(database_url: str) -> None:
    """Outermost, preview reads one snapshot of its own; inside a transaction, the caller's."""
    insert(database_url, make_rows(50, seed=3))
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT 1")  # a transaction is open
        inside = preview(conn, 1, largest=5)
        conn.rollback()
        assert preview(conn, 1, largest=5).total == inside.total
    assert inside.total.stones == sum(1 for row in make_rows(50, seed=3) if row["delisted_at"] is None)
