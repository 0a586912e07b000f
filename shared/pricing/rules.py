"""The pricing rules as a model: validation of rule sets, and a reference evaluator.

The first rule (lowest priority number) that matches a stone sets its markup. A rule matches on
stone type (natural, lab-grown, fancy colour), feed, shapes, a carat band and a cost band (both
half-open); empty conditions match anything. Price = cost x (1 + markup_percent/100) + markup_cents,
rounded half-up to the cent. Money stays in integer cents and Decimal throughout.

Consolidation prices whole batches in SQL (shared/sync/sql/price.sql); `RuleSet.price` is the same
rule in Python, for quoting single stones, and tests hold the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, Protocol

from pydantic import BaseModel, Field, model_validator

StoneType = Literal["natural", "lab_grown", "fancy"]


class Priceable(Protocol):
    """What a rule looks at (a catalogue row has all of it)."""

    feed: str
    shape: str
    carats: Decimal
    cost_cents: int
    lab_grown: bool
    fancy_color: str | None


def stone_type(stone: Priceable) -> StoneType:
    """Lab-grown, else fancy colour, else natural."""
    if stone.lab_grown:
        return "lab_grown"
    return "fancy" if stone.fancy_color else "natural"


class UnpricedStone(ValueError):
    """No rule matched: the rule set has no catch-all."""


class PricingRule(BaseModel):
    rule_id: int | None = None
    priority: int
    name: str = Field(min_length=1)
    stone_type: StoneType | None = None
    feed: str | None = None
    shapes: list[str] | None = None
    carats_min: Decimal | None = None
    carats_max: Decimal | None = None
    cost_min_cents: int | None = Field(default=None, ge=0)
    cost_max_cents: int | None = Field(default=None, ge=0)
    markup_percent: Decimal = Field(default=Decimal(0), gt=-100)
    markup_cents: int = 0

    @model_validator(mode="after")
    def _bands_not_empty(self) -> PricingRule:
        if self.carats_min is not None and self.carats_max is not None and self.carats_max <= self.carats_min:
            raise ValueError("carats_max must exceed carats_min")
        low, high = self.cost_min_cents, self.cost_max_cents
        if low is not None and high is not None and high <= low:
            raise ValueError("cost_max_cents must exceed cost_min_cents")
        return self

    @property
    def is_catch_all(self) -> bool:
        conditions = (
            self.stone_type,
            self.feed,
            self.shapes,
            self.carats_min,
            self.carats_max,
            self.cost_min_cents,
            self.cost_max_cents,
        )
        return all(value is None for value in conditions)

    def matches(self, stone: Priceable) -> bool:
        return (
            (self.stone_type is None or self.stone_type == stone_type(stone))
            and (self.feed is None or self.feed == stone.feed)
            and (self.shapes is None or stone.shape in self.shapes)
            and (self.carats_min is None or stone.carats >= self.carats_min)
            and (self.carats_max is None or stone.carats < self.carats_max)
            and (self.cost_min_cents is None or stone.cost_cents >= self.cost_min_cents)
            and (self.cost_max_cents is None or stone.cost_cents < self.cost_max_cents)
        )

    def apply(self, cost_cents: int) -> int:
        marked_up = Decimal(cost_cents) * (1 + self.markup_percent / 100) + self.markup_cents
        return max(0, int(marked_up.quantize(Decimal(1), ROUND_HALF_UP)))


@dataclass(frozen=True)
class Priced:
    price_cents: int
    rule_id: int | None


class RuleSet:
    """One immutable version of the rules, ordered by priority, ending in a catch-all."""

    def __init__(self, version: int, rules: list[PricingRule]) -> None:
        self.version = version
        self.rules = sorted(rules, key=lambda rule: rule.priority)
        if not self.rules or not self.rules[-1].is_catch_all:
            raise ValueError(f"pricing version {version}: the last rule must match every stone")

    def price(self, stone: Priceable) -> Priced:
        for rule in self.rules:
            if rule.matches(stone):
                return Priced(rule.apply(stone.cost_cents), rule.rule_id)
        raise UnpricedStone(f"no rule of version {self.version} matches")  # unreachable with a catch-all
