"""What a matched rule charges for a cost: markup, then floor, then rounding, in integer cents.

The twin of the SQL function `caratflow_charge` (migration 0013); tests/pricing hold the two equal.

1. Markup: cost x (1 + markup_percent / 100) + markup_cents, half-up to the cent, at least 0.
2. Floor, where one applies (either floor field set): the price is at least
   floor = cost + max(floor_cents, ceil(cost x floor_percent / 100)); a floor of 0 still means "never
   below cost". The floor lifts the marked-up price; it never lowers it.
3. Rounding of that whole-cent amount p (never of the unrounded markup, so there is one rounding to
   the cent and at most one more):
   - none: p;
   - dollar: half-up to the dollar, but never below the floor rounded up to the dollar (so rounding
     down that would break the floor rounds up instead);
   - multiple: the smallest multiple of rounding_step_cents that is >= p ($10 is a step of 1000);
   - charm: the smallest amount >= p that ends in rounding_ending_cents modulo rounding_step_cents
     (".99" is step 100, ending 99: 12.34 -> 12.99, 12.99 stays; "x9.99" is step 1000, ending 999:
     12.34 -> 19.99; "x9.00" is step 1000, ending 900).
   multiple and charm only round up, so a price that met its floor still does.
Decimal arithmetic runs at 50 digits, exact for any bigint cost and numeric(7, 3) percentage, as
PostgreSQL's numeric is. A price beyond bigint is refused, as PostgreSQL refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext
from typing import Literal

Rounding = Literal["none", "dollar", "multiple", "charm"]

BIGINT_MAX = 2**63 - 1


@dataclass(frozen=True)
class Terms:
    """A rule's terms with its set's defaults filled in (the view pricing_rule_terms)."""

    markup_percent: Decimal = Decimal(0)
    markup_cents: int = 0
    rounding: Rounding | None = None
    rounding_step_cents: int | None = None
    rounding_ending_cents: int | None = None
    floor_cents: int | None = None
    floor_percent: Decimal | None = None


def charge(terms: Terms, cost_cents: int) -> int:
    """The price in cents for `cost_cents` under `terms`."""
    floor = floor_price(cost_cents, terms.floor_cents, terms.floor_percent)
    price = marked_up(cost_cents, terms.markup_percent, terms.markup_cents)
    if floor is not None:
        price = max(price, floor)
    price = rounded(price, terms, floor)
    if price > BIGINT_MAX:
        raise OverflowError(f"a price of {price} cents is beyond what the catalogue stores")
    return price


def marked_up(cost_cents: int, markup_percent: Decimal, markup_cents: int) -> int:
    with localcontext() as context:
        context.prec = 50
        value = Decimal(cost_cents) * (1 + markup_percent / 100) + markup_cents
        return max(0, int(value.quantize(Decimal(1), ROUND_HALF_UP)))


def floor_price(cost_cents: int, floor_cents: int | None, floor_percent: Decimal | None) -> int | None:
    """The least price a floor allows, or None where no floor applies."""
    if floor_cents is None and floor_percent is None:
        return None
    with localcontext() as context:
        context.prec = 50
        margin = (Decimal(cost_cents) * (floor_percent or 0) / 100).to_integral_value(ROUND_CEILING)
    return cost_cents + max(floor_cents or 0, int(margin))


def rounded(price: int, terms: Terms, floor: int | None) -> int:
    step, ending = terms.rounding_step_cents, terms.rounding_ending_cents or 0
    if terms.rounding == "dollar":
        nearest = (price + 50) // 100 * 100
        return nearest if floor is None else max(nearest, (floor + 99) // 100 * 100)
    if terms.rounding in ("multiple", "charm"):
        if step is None:
            raise ValueError(f"rounding {terms.rounding!r} needs rounding_step_cents")
        return ending + (price - ending + step - 1) // step * step
    return price
