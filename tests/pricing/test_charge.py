"""Markup, floor and rounding, edge by edge, in Python and in PostgreSQL's caratflow_charge alike."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from shared.pricing.charge import BIGINT_MAX, Terms, charge

D = Decimal
DOLLAR = Terms(rounding="dollar")
TEN_DOLLARS = Terms(rounding="multiple", rounding_step_cents=1000)
CHARM_99 = Terms(rounding="charm", rounding_step_cents=100, rounding_ending_cents=99)
CHARM_X9_99 = Terms(rounding="charm", rounding_step_cents=1000, rounding_ending_cents=999)
CHARM_X9_00 = Terms(rounding="charm", rounding_step_cents=1000, rounding_ending_cents=900)

# (terms, cost_cents, expected price_cents, why)
CASES: list[tuple[Terms, int, int, str]] = [
    # markup, rounded half-up to the cent, never below 0
    (Terms(markup_percent=D(25)), 10_000, 12_500, "percent"),
    (Terms(markup_percent=D("12.345")), 101, 113, "113.46845 -> 113"),
    (Terms(markup_percent=D(50)), 1, 2, "1.5 rounds half up"),
    (Terms(markup_percent=D(-50)), 1, 1, "0.5 rounds half up"),
    (Terms(markup_cents=5000), 0, 5000, "fixed fee on a zero cost"),
    (Terms(markup_percent=D(-10), markup_cents=-5000), 1000, 0, "never below zero"),
    # none is to the cent
    (Terms(rounding="none", markup_percent=D("0.5")), 999, 1004, "1003.995 -> 1004"),
    # dollar: half-up to the dollar
    (DOLLAR, 0, 0, "zero"),
    (DOLLAR, 1249, 1200, "down"),
    (DOLLAR, 1250, 1300, "half up"),
    (DOLLAR, 1300, 1300, "exact"),
    # up to a multiple: always up, exact multiples stay
    (TEN_DOLLARS, 0, 0, "zero is a multiple"),
    (TEN_DOLLARS, 1, 1000, "a cent above becomes the next multiple"),
    (TEN_DOLLARS, 1000, 1000, "exact"),
    (TEN_DOLLARS, 1001, 2000, "a cent above"),
    (Terms(rounding="multiple", rounding_step_cents=1), 1234, 1234, "a step of a cent changes nothing"),
    # charm: the smallest amount >= price ending so
    (CHARM_99, 0, 99, "zero becomes 0.99"),
    (CHARM_99, 1234, 1299, "12.34 -> 12.99"),
    (CHARM_99, 1299, 1299, "at the boundary stays"),
    (CHARM_99, 1300, 1399, "a cent past goes to the next"),
    (CHARM_X9_99, 1234, 1999, "12.34 -> 19.99"),
    (CHARM_X9_99, 1999, 1999, "19.99 stays"),
    (CHARM_X9_99, 2000, 2999, "20.00 -> 29.99"),
    (CHARM_X9_00, 1900, 1900, "19.00 stays"),
    (CHARM_X9_00, 1901, 2900, "19.01 -> 29.00"),
    (CHARM_X9_00, 0, 900, "zero -> 9.00"),
    # floor: cost + the larger of the cents and the percent (rounded up to the cent)
    (Terms(markup_percent=D(-20), floor_cents=0), 10_000, 10_000, "a zero floor: never below cost"),
    (Terms(markup_percent=D(-20), floor_cents=500), 10_000, 10_500, "cents"),
    (Terms(markup_percent=D(-20), floor_percent=D(5)), 10_000, 10_500, "percent"),
    (Terms(floor_cents=100, floor_percent=D(5)), 10_000, 10_500, "the larger: percent"),
    (Terms(floor_cents=900, floor_percent=D(5)), 10_000, 10_900, "the larger: cents"),
    (Terms(floor_percent=D("0.001")), 1, 2, "a fraction of a cent of margin rounds up"),
    (Terms(markup_percent=D(50), floor_cents=100), 10_000, 15_000, "a floor never lowers a price"),
    (Terms(floor_cents=0), 0, 0, "zero cost, zero floor"),
    (Terms(floor_cents=250), 0, 250, "zero cost, a floor"),
    # floor then rounding: rounding never goes below the floor
    (Terms(rounding="dollar", floor_cents=40), 1000, 1100, "1040 would round down to 1000 < floor: up"),
    (Terms(rounding="dollar", floor_cents=60), 1000, 1100, "1060 rounds up anyway"),
    (Terms(rounding="dollar", floor_cents=0), 1000, 1000, "the floor on an exact dollar"),
    (Terms(rounding="dollar", markup_percent=D(4), floor_cents=0), 1000, 1000, "1040 -> 1000, the floor itself"),
    (Terms(rounding="dollar", markup_percent=D(-4), floor_cents=0), 1040, 1100, "1040 -> 1000 < cost: up"),
    (Terms(rounding="dollar", markup_percent=D(10), floor_cents=0), 1000, 1100, "1100 already whole"),
    (Terms(rounding="charm", rounding_step_cents=100, rounding_ending_cents=99, floor_cents=1), 1299, 1399, ""),
    (Terms(rounding="multiple", rounding_step_cents=1000, floor_percent=D(10)), 9_000, 10_000, "9900 -> 10000"),
    # huge costs stay exact ($10 billion, a 3-decimal markup)
    (Terms(markup_percent=D("12.345")), 10**12, 1_123_450_000_000, "exact at 10^12"),
    (Terms(markup_percent=D("0.001"), rounding="dollar"), 10**15 + 49, 10**15 + 10**10 + 0, "half-up at 10^15"),
    (CHARM_X9_99, 10**15 + 1000, 10**15 + 1999, "charm at 10^15"),
]


@pytest.mark.parametrize(
    ("terms", "cost", "expected", "why"), CASES, ids=[case[3] or str(i) for i, case in enumerate(CASES)]
)
def test_charge(terms: Terms, cost: int, expected: int, why: str) -> None:
    assert charge(terms, cost) == expected, why


def test_postgres_charges_the_same(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for terms, cost, expected, why in CASES:
            (price,) = conn.execute(
                "SELECT caratflow_charge(%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    cost,
                    terms.markup_percent,
                    terms.markup_cents,
                    terms.rounding,
                    terms.rounding_step_cents,
                    terms.rounding_ending_cents,
                    terms.floor_cents,
                    terms.floor_percent,
                ),
            ).fetchone() or (None,)
            assert price == expected, why


def test_a_price_beyond_bigint_is_refused_by_both(database_url: str) -> None:
    cost = BIGINT_MAX // 2
    with pytest.raises(OverflowError):
        charge(Terms(markup_percent=D(200)), cost)
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.NumericValueOutOfRange):
        conn.execute("SELECT caratflow_charge(%s, 200, 0, NULL, NULL, NULL, NULL, NULL)", (cost,))
