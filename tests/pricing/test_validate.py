"""Validation findings, each shown firing and, where it matters most, shown silent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from priced_stones import Stone

from shared.pricing.rules import PriceAdjustments, PricingRule, RuleSet, UnpricedStone
from shared.pricing.sets import RuleSetContent
from shared.pricing.validate import Finding, has_errors, validate


def rule(priority: int, **conditions: Any) -> PricingRule:
    return PricingRule(**{"priority": priority, "name": f"r{priority}", "markup_percent": Decimal(20), **conditions})


def findings(*rules: PricingRule, defaults: PriceAdjustments | None = None, code: str | None = None) -> list[Finding]:
    found = validate(RuleSet(2, list(rules), defaults))
    return [finding for finding in found if code is None or finding.code == code]


CATCH_ALLS = [rule(900, stone_type="natural"), rule(901, stone_type="lab_grown"), rule(902, stone_type="fancy")]


def test_a_catch_all_per_type_or_one_for_all_prices_everything() -> None:
    assert findings(*CATCH_ALLS) == []
    assert findings(rule(1, stone_type="natural", carats_max=Decimal(1)), rule(1000)) == []


def test_a_type_without_a_catch_all_is_an_error_naming_that_type() -> None:
    found = findings(*CATCH_ALLS[:2])
    assert [(f.severity, f.code) for f in found] == [("error", "unpriced_stones")]
    assert "fancy stones" in found[0].message
    assert has_errors(found)


def test_bands_that_together_cover_a_type_are_proof_enough() -> None:
    """No single catch-all for natural stones, yet every one is priced: carat bands and cost bands."""
    natural = [
        rule(10, stone_type="natural", carats_max=Decimal("0.50")),
        rule(20, stone_type="natural", carats_min=Decimal("0.50"), carats_max=Decimal(2), cost_max_cents=500_000),
        rule(30, stone_type="natural", carats_min=Decimal("0.50"), carats_max=Decimal(2), cost_min_cents=500_000),
        rule(40, stone_type="natural", carats_min=Decimal(2)),
    ]
    assert findings(*natural, *CATCH_ALLS[1:], code="unpriced_stones") == []


def test_a_gap_between_bands_is_found_and_described() -> None:
    natural = [
        rule(10, stone_type="natural", carats_max=Decimal("0.50")),
        rule(20, stone_type="natural", carats_min=Decimal("0.60")),
    ]
    (found,) = findings(*natural, *CATCH_ALLS[1:])
    assert found.code == "unpriced_stones"
    assert "natural stones, 0.50 to under 0.60 ct" in found.message


def test_rules_naming_feeds_or_grades_leave_the_others_unpriced() -> None:
    by_feed = findings(rule(10, stone_type="natural", feed="nivoda-natural"), *CATCH_ALLS[1:])
    assert "feed other than nivoda-natural" in by_feed[0].message
    by_colour = findings(rule(10, colors=["D", "E"]), rule(20, colors=["F"]))
    assert len(by_colour) == 3  # every type
    assert "colour other than D, E, F (or none)" in by_colour[0].message


def test_cost_bands_from_zero_to_no_limit_cover() -> None:
    assert findings(rule(10, cost_max_cents=100_000), rule(20, cost_min_cents=100_000)) == []
    gap = findings(rule(10, cost_min_cents=1), rule(20, cost_min_cents=100_000), code="unpriced_stones")
    assert len(gap) == 3
    assert "costing under $0.01" in gap[0].message


def test_a_rule_covered_by_one_earlier_rule_is_shadowed() -> None:
    (found,) = findings(rule(10), rule(20, stone_type="natural"), code="shadowed")
    assert found.priorities == [20, 10]


def test_a_rule_covered_by_several_earlier_rules_together_is_shadowed() -> None:
    split = [
        rule(10, stone_type="natural", carats_max=Decimal(1)),
        rule(20, stone_type="natural", carats_min=Decimal(1)),
    ]
    (found,) = findings(*split, rule(30, stone_type="natural", carats_min=Decimal("0.5")), rule(1000), code="shadowed")
    assert found.priorities == [30, 10, 20]


def test_a_rule_an_earlier_rule_covers_only_in_part_is_not_shadowed() -> None:
    assert findings(rule(10, stone_type="natural", carats_max=Decimal(1)), rule(20), code="shadowed") == []
    # the same band but for a list the earlier rule does not take entirely
    assert findings(rule(10, shapes=["ROUND"]), rule(20, shapes=["ROUND", "OVAL"]), rule(99), code="shadowed") == []


def test_a_rule_no_stone_can_meet_matches_nothing() -> None:
    (found,) = findings(rule(10, cost_max_cents=0), rule(20), code="matches_nothing")
    assert found.priorities == [10]
    assert findings(rule(10, cost_max_cents=1), rule(20), code="matches_nothing") == []


def test_a_markup_below_cost_without_a_floor_warns() -> None:
    (found,) = findings(rule(10, markup_percent=Decimal(-10)), code="below_cost")
    assert found.severity == "warning"
    assert found.priorities == [10]
    assert findings(PricingRule(priority=10, name="x", markup_cents=-100), code="below_cost") != []


def test_a_floor_of_the_rule_or_the_set_silences_below_cost() -> None:
    assert findings(rule(10, markup_percent=Decimal(-10), floor_cents=0), code="below_cost") == []
    assert findings(rule(10, markup_percent=Decimal(-10)), defaults=PriceAdjustments(floor_percent=Decimal(5)),
                    code="below_cost") == []  # fmt: skip


def test_below_cost_looks_only_at_the_rules_cost_band() -> None:
    """-10% + $100 stays at or above cost below $1,000 (at $999.99: $999.99 x 0.9 + $100 = $999.991)."""
    banded = PricingRule(
        priority=10, name="x", markup_percent=Decimal(-10), markup_cents=10_000, cost_max_cents=100_000
    )
    assert findings(banded, code="below_cost") == []
    # from a cost of $1,000.06: $1,000.06 x 0.9 + $100 = $1,000.054, $1,000.05
    wider = banded.model_copy(update={"cost_max_cents": 100_007})
    assert findings(wider, code="below_cost") != []


def test_rounding_to_the_dollar_can_go_below_cost_unless_the_markup_is_half_a_dollar() -> None:
    zero = PricingRule(priority=10, name="x", rounding="dollar")
    assert "49 cents" in findings(zero, code="below_cost")[0].message
    assert findings(zero.model_copy(update={"markup_cents": 50}), code="below_cost") == []
    assert findings(rule(10), code="below_cost") == []  # +20%, to the cent


def test_bands_of_one_tier_that_overlap_warn() -> None:
    overlapping = [
        rule(10, stone_type="natural", carats_max=Decimal(1)),
        rule(20, stone_type="natural", carats_min=Decimal("0.5"), carats_max=Decimal(2)),
    ]
    (found,) = findings(*overlapping, rule(99), code="overlapping_bands")
    assert found.priorities == [10, 20]


def test_adjacent_bands_other_tiers_and_a_fallback_do_not_overlap() -> None:
    adjacent = [
        rule(10, stone_type="natural", carats_max=Decimal(1)),
        rule(20, stone_type="natural", carats_min=Decimal(1), carats_max=Decimal(2)),
        rule(30, stone_type="lab_grown", carats_max=Decimal(2)),  # another tier
        rule(40, stone_type="natural"),  # the tier's fallback
        rule(99),
    ]
    assert findings(*adjacent, code="overlapping_bands") == []


def test_errors_come_first() -> None:
    found = findings(rule(10, stone_type="natural", markup_percent=Decimal(-5)))
    assert [f.severity for f in found] == ["error", "error", "warning"]


# --- soundness against the evaluator: a set validation passes prices every stone


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


small_rules = st.builds(
    PricingRule,
    priority=st.integers(1, 50),
    name=st.just("r"),
    stone_type=_maybe(st.sampled_from(["natural", "lab_grown", "fancy"])),
    feed=st.none() | st.none() | st.just("a"),
    colors=st.none() | st.none() | st.sampled_from([["D"], ["D", "E"]]),
    carats_min=_maybe(st.sampled_from([Decimal("0.5"), Decimal(1)])),
    cost_max_cents=_maybe(st.sampled_from([100, 10_000])),
)
stones = st.builds(
    Stone,
    feed=st.sampled_from(["a", "b"]),
    shape=st.just("ROUND"),
    carats=st.sampled_from([Decimal("0.01"), Decimal("0.49"), Decimal("0.5"), Decimal("0.99"), Decimal(1), Decimal(9)]),
    cost_cents=st.sampled_from([0, 99, 100, 9_999, 10_000, 10**9]),
    lab_grown=st.booleans(),
    fancy_color=st.none() | st.just("PINK"),
    lab=st.none() | st.just("GIA"),
    color=st.sampled_from([None, "D", "E", "F"]),
    clarity=st.just("VS1"),
)


# Most random sets leave some stones unpriced; enough examples that a few hundred do not.
@settings(max_examples=600, deadline=None, database=None)
@given(drawn=st.lists(small_rules, min_size=1, max_size=6, unique_by=lambda r: r.priority), sample=st.lists(stones))
def test_no_unpriced_error_means_every_stone_is_priced(drawn: list[PricingRule], sample: list[Stone]) -> None:
    rules = RuleSet(2, drawn)
    if findings(*drawn, code="unpriced_stones"):
        return
    for stone in sample:
        try:
            rules.price(stone)
        except UnpricedStone as error:  # pragma: no cover - the failure this test exists to catch
            raise AssertionError(f"validation passed {drawn} but {stone} is unpriced") from error


def test_content_is_validated_before_it_is_stored() -> None:
    content = RuleSetContent(rules=[rule(10, stone_type="natural"), rule(20, stone_type="lab_grown")])
    assert [f.code for f in validate(content.rule_set())] == ["unpriced_stones"]


@settings(max_examples=400, deadline=None, database=None)
@given(drawn=st.lists(small_rules, min_size=1, max_size=6, unique_by=lambda r: r.priority))
def test_an_unpriced_error_names_a_stone_no_rule_prices(drawn: list[PricingRule]) -> None:
    """With the test above: validation reports unpriced stones exactly when there are some."""
    rules = RuleSet(2, drawn)
    for finding in findings(*drawn, code="unpriced_stones"):
        assert finding.example is not None
        kind = finding.example.stone_type
        stone = Stone(
            **finding.example.model_dump(exclude={"stone_type"}),
            lab_grown=kind == "lab_grown",
            fancy_color="PINK" if kind == "fancy" else None,
        )
        try:
            priced = rules.price(stone)
        except UnpricedStone:
            continue
        raise AssertionError(f"{stone} was reported unpriced but {priced} prices it")
