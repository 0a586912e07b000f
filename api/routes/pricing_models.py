"""Request bodies of the pricing routes: the domain's models (shared/pricing) with every field bounded for
input from outside.

Each keeps the domain's names and checks (a body is a `RuleSetContent`, so its own validators run while
the request is parsed and answer 400, never 500 later); on top, no unknown field, text that PostgreSQL can
store (shared/text.py), bounded lists, and integers within the bigint or integer column they land in.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.pricing import quotes, sets
from shared.pricing.charge import BIGINT_MAX
from shared.pricing.rules import Carats, Percent, PriceAdjustments, PricingRule
from shared.text import SafeText

INT_MAX = 2**31 - 1
MAX_GRADES = 100

Name = Annotated[SafeText, StringConstraints(min_length=1, max_length=200)]
Note = Annotated[SafeText, StringConstraints(max_length=2000)]
Comment = Annotated[SafeText, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]
Grade = Annotated[SafeText, StringConstraints(min_length=1, max_length=100)]
Grades = Annotated[list[Grade], Field(min_length=1, max_length=MAX_GRADES)]
Cents = Annotated[int, Field(ge=0, le=BIGINT_MAX)]
SignedCents = Annotated[int, Field(ge=-BIGINT_MAX, le=BIGINT_MAX)]
Step = Annotated[int, Field(gt=0, le=BIGINT_MAX)]
Version = Annotated[int, Field(ge=1, le=INT_MAX)]
_FORBID = ConfigDict(extra="forbid")


class Adjustments(PriceAdjustments):
    """A set's default rounding and floor."""

    model_config = _FORBID

    rounding_step_cents: Step | None = None
    rounding_ending_cents: Cents | None = None
    floor_cents: Cents | None = None
    floor_percent: Annotated[Percent, Field(ge=0)] | None = None


class Rule(PricingRule):
    """A rule as a draft takes it (a rule id sent back from a read is ignored: the draft stores new rows)."""

    model_config = _FORBID

    rule_id: Annotated[int, Field(ge=1, le=BIGINT_MAX)] | None = None
    priority: Annotated[int, Field(ge=-INT_MAX, le=INT_MAX)]
    name: Name
    feed: Grade | None = None
    shapes: Grades | None = None
    labs: Grades | None = None
    colors: Grades | None = None
    clarities: Grades | None = None
    carats_min: Annotated[Carats, Field(gt=0)] | None = None
    carats_max: Annotated[Carats, Field(gt=0)] | None = None
    cost_min_cents: Cents | None = None
    cost_max_cents: Cents | None = None
    markup_percent: Annotated[Percent, Field(gt=-100)] = Decimal(0)
    markup_cents: SignedCents = 0
    rounding_step_cents: Step | None = None
    rounding_ending_cents: Cents | None = None
    floor_cents: Cents | None = None
    floor_percent: Annotated[Percent, Field(ge=0)] | None = None


class RuleSetBody(sets.RuleSetContent):
    """A draft's note, defaults and rules, replaced whole (create, edit)."""

    model_config = _FORBID

    note: Note = ""
    defaults: Adjustments = Field(default_factory=Adjustments)
    # Narrower than the base's list[PricingRule] (mypy sees lists as invariant); pydantic validates this one.
    rules: Annotated[list[Rule], Field(max_length=sets.MAX_RULES)] = []  # type: ignore[assignment]


class EditBody(RuleSetBody):
    comment: Note = ""


class CopyBody(BaseModel):
    model_config = _FORBID

    note: Note | None = None  # the source's note when absent


class ActivationBody(BaseModel):
    """Activating or reverting: why (required; it goes to the audit trail)."""

    model_config = _FORBID

    comment: Comment


class QuoteStone(quotes.Stone):
    """A hypothetical stone, with the catalogue's names and bounds."""

    model_config = _FORBID

    feed: Grade
    shape: Grade
    carats: Annotated[Carats, Field(gt=0)]
    cost_cents: Cents
    fancy_color: Grade | None = None
    lab: Grade | None = None
    color: Grade | None = None
    clarity: Grade | None = None


class QuoteBody(BaseModel):
    """One stone, by diamond_id or given whole, under `pricing_version` (the active one if absent)."""

    model_config = _FORBID

    pricing_version: Version | None = None
    diamond_id: uuid.UUID | None = None
    stone: QuoteStone | None = None

    @model_validator(mode="after")
    def _one_stone(self) -> QuoteBody:
        if (self.diamond_id is None) == (self.stone is None):
            raise ValueError("give either diamond_id or stone")
        return self
