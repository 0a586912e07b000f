"""The pricing rules as a model: validation of rule sets, and a reference evaluator.

The first rule (lowest priority number) that matches a stone prices it. A rule matches on stone type
(natural, lab-grown, fancy colour), feed, shapes, labs, colours, clarities, a carat band and a cost band
(both half-open); an empty condition matches anything, and a list never matches a stone without that
grade. What a matched rule charges (markup, then floor, then rounding) is shared/pricing/charge.py; a
rule's own rounding and floor win over its set's defaults. Money stays in integer cents and Decimal.

PostgreSQL prices whole batches (shared/pricing/sql.py); `RuleSet.price` is the same rule in Python, for
quoting single stones, and tests/pricing hold the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, Field, model_validator

from shared.pricing.charge import Rounding, Terms, charge

StoneType = Literal["natural", "lab_grown", "fancy"]

# numeric(7, 3) and numeric(7, 2) in the schema: more digits would be rounded on storing, so refused here.
# Otherwise the model accepts what the schema accepts, so that every stored set loads.
Percent = Annotated[Decimal, Field(max_digits=7, decimal_places=3)]
Carats = Annotated[Decimal, Field(max_digits=7, decimal_places=2)]
Grades = Annotated[list[str], Field(min_length=1)]


class Priceable(Protocol):
    """What a rule looks at (a catalogue row has all of it)."""

    feed: str
    shape: str
    carats: Decimal
    cost_cents: int
    lab_grown: bool
    fancy_color: str | None
    lab: str | None
    color: str | None
    clarity: str | None


def stone_type(stone: Priceable) -> StoneType:
    """Lab-grown, else fancy colour, else natural."""
    if stone.lab_grown:
        return "lab_grown"
    return "fancy" if stone.fancy_color else "natural"


class UnpricedStone(ValueError):
    """No rule matched: the rule set has no catch-all."""


class PriceAdjustments(BaseModel):
    """Rounding and floor: on a rule, or on a set as the default of its rules (the same columns)."""

    rounding: Rounding | None = None
    rounding_step_cents: int | None = Field(default=None, gt=0)
    rounding_ending_cents: int | None = Field(default=None, ge=0)
    floor_cents: int | None = Field(default=None, ge=0)
    floor_percent: Percent | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _rounding_complete(self) -> PriceAdjustments:
        step, ending = self.rounding_step_cents, self.rounding_ending_cents
        if self.rounding in (None, "none", "dollar") and (step is not None or ending is not None):
            raise ValueError(f"rounding {self.rounding!r} takes no step or ending")
        if self.rounding == "multiple" and (step is None or ending is not None):
            raise ValueError("rounding 'multiple' takes rounding_step_cents and no ending")
        if self.rounding == "charm" and (step is None or ending is None or ending >= step):
            raise ValueError("rounding 'charm' takes rounding_step_cents and a rounding_ending_cents below it")
        return self

    @property
    def has_floor(self) -> bool:
        return self.floor_cents is not None or self.floor_percent is not None


class PricingRule(PriceAdjustments):
    rule_id: int | None = None
    priority: int
    name: str = Field(min_length=1)
    stone_type: StoneType | None = None
    feed: str | None = None
    shapes: Grades | None = None
    labs: Grades | None = None
    colors: Grades | None = None
    clarities: Grades | None = None
    carats_min: Carats | None = None
    carats_max: Carats | None = None
    cost_min_cents: int | None = Field(default=None, ge=0)
    cost_max_cents: int | None = Field(default=None, ge=0)
    markup_percent: Percent = Field(default=Decimal(0), gt=-100)
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
            self.labs,
            self.colors,
            self.clarities,
            self.carats_min,
            self.carats_max,
            self.cost_min_cents,
            self.cost_max_cents,
        )
        return all(value is None for value in conditions)

    def matches(self, stone: Priceable) -> bool:
        # Each grade is read only when the rule asks for it, so a stone needs only what its rules look at.
        return (
            (self.stone_type is None or self.stone_type == stone_type(stone))
            and (self.feed is None or self.feed == stone.feed)
            and (self.shapes is None or stone.shape in self.shapes)
            and (self.labs is None or stone.lab in self.labs)
            and (self.colors is None or stone.color in self.colors)
            and (self.clarities is None or stone.clarity in self.clarities)
            and (self.carats_min is None or stone.carats >= self.carats_min)
            and (self.carats_max is None or stone.carats < self.carats_max)
            and (self.cost_min_cents is None or stone.cost_cents >= self.cost_min_cents)
            and (self.cost_max_cents is None or stone.cost_cents < self.cost_max_cents)
        )

    def terms(self, defaults: PriceAdjustments) -> Terms:
        """This rule's terms: its own rounding if it has one, else the set's; likewise its floor."""
        rounding = self if self.rounding is not None else defaults
        floor = self if self.has_floor else defaults
        return Terms(
            markup_percent=self.markup_percent,
            markup_cents=self.markup_cents,
            rounding=rounding.rounding,
            rounding_step_cents=rounding.rounding_step_cents,
            rounding_ending_cents=rounding.rounding_ending_cents,
            floor_cents=floor.floor_cents,
            floor_percent=floor.floor_percent,
        )


@dataclass(frozen=True)
class Priced:
    price_cents: int
    rule_id: int | None


class RuleSet:
    """One immutable version of the rules, ordered by priority.

    A set that leaves some stone unpriced can be loaded (to report it, as consolidation does); validating
    that every possible stone finds a rule is the lifecycle's job, before a set is activated.
    """

    def __init__(self, version: int, rules: list[PricingRule], defaults: PriceAdjustments | None = None) -> None:
        self.version = version
        self.rules = sorted(rules, key=lambda rule: rule.priority)
        self.defaults = defaults or PriceAdjustments()

    def price(self, stone: Priceable) -> Priced:
        for rule in self.rules:
            if rule.matches(stone):
                return Priced(charge(rule.terms(self.defaults), stone.cost_cents), rule.rule_id)
        raise UnpricedStone(f"no rule of version {self.version} matches")
