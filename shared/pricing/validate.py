"""What is wrong with a rule set, before it prices anything: findings with a severity, a code and a sentence.

Pure Python over the model (no database). The space of possible stones is what the catalogue's schema
admits, not what today's feeds happen to send: every stone type; any feed and shape; any lab, colour and
clarity, or none; carats 0.01 to 99999.99 in hundredths; a cost of 0 to the largest bigint in cents.

A rule is a box in that space (one set per condition, half-open bands), and two questions about boxes are
answered exactly, by splitting a box along the rules' own edges until each piece is inside a rule or
outside all of them (`_uncovered`): which stones no rule matches, and whether a rule's stones are all
matched earlier. A value no rule names (a new feed, a stone without a lab) stands for all such values,
since every rule treats them alike. So:

- error `unpriced_stones`: some stone of a type matches no rule; one finding per type, with the stones
  left out in words and one of them as an `example`. Exact both ways (tests/pricing/test_validate.py
  holds it to RuleSet.price): silence proves every possible stone finds a rule, and the example is a
  stone no rule prices.
- warning `shadowed`: every stone the rule would match is matched by higher-priority rules (one or
  several together), so it never prices anything. Exact.
- warning `matches_nothing`: no possible stone meets the rule's conditions (e.g. a cost band under 0).
- warning `below_cost`: no floor applies to the rule (its own or the set's) and, for some cost in its
  cost band, the markup leaves the price below cost: cost x percent / 100 + cents < -0.5 cents, or, with
  rounding to the dollar (which can take off up to 49 cents), < 48.5 cents. Judged on the rule alone
  (stones earlier rules take are not subtracted). Silence proves that no stone the rule prices goes
  below cost. With rounding none the warning is exact too; with rounding dollar, multiple or charm it
  may fire where the rounding happens to lift every such price back to cost or above.
- warning `overlapping_bands`: two rules of one tier whose bands share stones (the later loses them).
  A tier is the rules with the same selector (stone type, feed, shapes, labs, colours, clarities) that
  have a carat or cost band: a band table for one kind of stone. A rule of the selector with no band is
  the tier's fallback, which overlapping is its purpose, so it is no band of the tier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel

from shared.pricing.rules import PricingRule, RuleSet, StoneType

Severity = Literal["error", "warning"]
Code = Literal["unpriced_stones", "shadowed", "matches_nothing", "below_cost", "overlapping_bands"]

STONE_TYPES: tuple[StoneType, ...] = ("natural", "lab_grown", "fancy")
CARATS = (1, 10_000_000)  # hundredths of a carat: numeric(7, 2) above 0
COSTS = (0, 2**63)  # cents: a bigint, never negative


class Example(BaseModel):
    """A possible stone (the attributes rules look at); None for a grade the stone does not have."""

    stone_type: StoneType
    feed: str
    shape: str
    lab: str | None
    color: str | None
    clarity: str | None
    carats: Decimal
    cost_cents: int


class Finding(BaseModel):
    severity: Severity
    code: Code
    priorities: list[int]  # the rules concerned (a priority is unique within a set; drafts' rules have no id)
    message: str
    example: Example | None = None  # unpriced_stones: one stone no rule prices


def has_errors(findings: list[Finding]) -> bool:
    return any(finding.severity == "error" for finding in findings)


def validate(rules: RuleSet) -> list[Finding]:
    """Every finding about `rules`: errors first, then warnings in priority order."""
    return [*_unpriced(rules), *_never_matching(rules), *_below_cost(rules), *_overlapping_bands(rules)]


# --- boxes over the space of stones


@dataclass(frozen=True)
class Values:
    """A set of values of one condition: `names`, or (open) every value except `names`, and no value."""

    names: frozenset[str]
    open: bool = False

    def __and__(self, other: Values) -> Values:
        if self.open and other.open:
            return Values(self.names | other.names, open=True)
        if self.open:
            return Values(other.names - self.names)
        if other.open:
            return Values(self.names - other.names)
        return Values(self.names & other.names)

    def __sub__(self, other: Values) -> Values:
        return self & Values(other.names, open=not other.open)

    def __bool__(self) -> bool:
        return self.open or bool(self.names)

    def within(self, other: Values) -> bool:
        return not (self - other)


ANY = Values(frozenset(), open=True)
_CATEGORIES = ("stone_type", "feed", "shape", "lab", "color", "clarity")
Band = tuple[int, int]  # [low, high)


@dataclass(frozen=True)
class Box:
    stone_type: Values
    feed: Values
    shape: Values
    lab: Values
    color: Values
    clarity: Values
    carats: Band
    cost: Band

    def __and__(self, other: Box) -> Box:
        values: dict[str, Any] = {name: getattr(self, name) & getattr(other, name) for name in _CATEGORIES}
        return Box(**values, carats=_meet(self.carats, other.carats), cost=_meet(self.cost, other.cost))

    def __bool__(self) -> bool:
        return all(getattr(self, name) for name in _CATEGORIES) and _size(self.carats) > 0 and _size(self.cost) > 0

    def within(self, other: Box) -> bool:
        return all(getattr(self, name).within(getattr(other, name)) for name in _CATEGORIES) and all(
            other_band[0] <= band[0] and band[1] <= other_band[1]
            for band, other_band in ((self.carats, other.carats), (self.cost, other.cost))
        )

    def pieces_outside(self, other: Box) -> list[Box]:
        """Disjoint boxes that together are self minus other: one condition at a time."""
        pieces, rest = [], self
        for name in _CATEGORIES:
            outside = getattr(rest, name) - getattr(other, name)
            if outside:
                pieces.append(_with(rest, name, outside))
            rest = _with(rest, name, getattr(rest, name) & getattr(other, name))
        for name in ("carats", "cost"):
            band, cut = getattr(rest, name), getattr(other, name)
            for piece in ((band[0], min(band[1], cut[0])), (max(band[0], cut[1]), band[1])):
                if _size(piece) > 0:
                    pieces.append(_with(rest, name, piece))
            rest = _with(rest, name, _meet(band, cut))
        return [piece for piece in pieces if piece]


def _with(stones: Box, name: str, value: Values | Band) -> Box:
    changed: dict[str, Any] = {name: value}
    return replace(stones, **changed)


def _meet(band: Band, other: Band) -> Band:
    return max(band[0], other[0]), min(band[1], other[1])


def _size(band: Band) -> int:
    return band[1] - band[0]


def everything(stone_type: StoneType | None = None) -> Box:
    kinds = STONE_TYPES if stone_type is None else (stone_type,)
    return Box(Values(frozenset(kinds)), ANY, ANY, ANY, ANY, ANY, CARATS, COSTS)


def box(rule: PricingRule) -> Box:
    """The stones `rule` matches (within the possible ones)."""

    def listed(values: list[str] | None) -> Values:
        return ANY if values is None else Values(frozenset(values))

    def hundredths(carats: Decimal | None, default: int) -> int:
        return default if carats is None else int(carats * 100)

    return everything() & Box(
        stone_type=listed(None if rule.stone_type is None else [rule.stone_type]),
        feed=listed(None if rule.feed is None else [rule.feed]),
        shape=listed(rule.shapes),
        lab=listed(rule.labs),
        color=listed(rule.colors),
        clarity=listed(rule.clarities),
        carats=(hundredths(rule.carats_min, CARATS[0]), hundredths(rule.carats_max, CARATS[1])),
        cost=(
            COSTS[0] if rule.cost_min_cents is None else rule.cost_min_cents,
            COSTS[1] if rule.cost_max_cents is None else rule.cost_max_cents,
        ),
    )


def _uncovered(space: Box, boxes: list[Box]) -> Box | None:
    """A piece of `space` that none of `boxes` touches, or None when together they cover all of it."""
    if any(space.within(cover) for cover in boxes):
        return None  # not needed for the answer, but it cuts the splitting short (a catch-all, a wide band)
    for index, cover in enumerate(boxes):
        if not space & cover:
            continue
        if space.within(cover):
            return None
        # Whatever `cover` takes is covered; only what lies outside it is left for the boxes after it.
        for piece in space.pieces_outside(cover):
            found = _uncovered(piece, boxes[index + 1 :])
            if found is not None:
                return found
        return None
    return space if space else None


# --- the findings


def _unpriced(rules: RuleSet) -> list[Finding]:
    boxes = [box(rule) for rule in rules.rules]
    findings = []
    for kind in STONE_TYPES:
        left = _uncovered(everything(kind), boxes)
        if left is not None:
            findings.append(
                Finding(
                    severity="error",
                    code="unpriced_stones",
                    priorities=[],
                    message=f"No rule prices some {kind} stones, e.g. {describe(left)}: add a rule for {kind}"
                    " stones (stone_type empty or "
                    f"{kind}) with no other condition after the others, or widen the rules to cover them.",
                    example=example(left),
                )
            )
    return findings


def _never_matching(rules: RuleSet) -> list[Finding]:
    findings = []
    boxes = [box(rule) for rule in rules.rules]
    for index, (rule, own) in enumerate(zip(rules.rules, boxes, strict=True)):
        if not own:
            findings.append(
                Finding(
                    severity="warning",
                    code="matches_nothing",
                    priorities=[rule.priority],
                    message=f"Rule {_name(rule)} matches no possible stone: its conditions exclude each other.",
                )
            )
            continue
        earlier = [(other, other_box) for other, other_box in zip(rules.rules[:index], boxes[:index], strict=True)]
        if _uncovered(own, [other_box for _, other_box in earlier]) is None:
            covering = [other for other, other_box in earlier if own & other_box]
            names = ", ".join(_name(other) for other in covering)
            findings.append(
                Finding(
                    severity="warning",
                    code="shadowed",
                    priorities=[rule.priority, *(other.priority for other in covering)],
                    message=f"Rule {_name(rule)} never prices a stone: {names} match every stone it would.",
                )
            )
    return findings


def _below_cost(rules: RuleSet) -> list[Finding]:
    findings = []
    for rule in rules.rules:
        terms = rule.terms(rules.defaults)
        if terms.floor_cents is not None or terms.floor_percent is not None:
            continue  # a floor keeps the price at or above cost + floor, whatever the markup
        low, high = box(rule).cost
        low, high = max(low, 1), high - 1  # a cost of 0 is never priced below itself
        if low > high:
            continue
        least, cost = min((cost * terms.markup_percent / 100 + terms.markup_cents, cost) for cost in (low, high))
        limit = Decimal("48.5") if terms.rounding == "dollar" else Decimal("-0.5")
        if least < limit:
            rounding = " and rounding to the dollar may take up to 49 cents off" if terms.rounding == "dollar" else ""
            findings.append(
                Finding(
                    severity="warning",
                    code="below_cost",
                    priorities=[rule.priority],
                    message=f"Rule {_name(rule)} can price stones below cost: at a cost of {_money(cost)} its markup"
                    f" comes to {_money(least)}{rounding}, and no floor applies. Give it a floor (floor_cents or"
                    " floor_percent, or the set's) to keep every price at or above cost.",
                )
            )
    return findings


def _overlapping_bands(rules: RuleSet) -> list[Finding]:
    findings = []
    banded = [rule for rule in rules.rules if _has_band(rule)]
    for index, first in enumerate(banded):
        for second in banded[index + 1 :]:
            if _selector(first) == _selector(second) and box(first) & box(second):
                findings.append(
                    Finding(
                        severity="warning",
                        code="overlapping_bands",
                        priorities=[first.priority, second.priority],
                        message=f"Rules {_name(first)} and {_name(second)} select the same stones and their bands"
                        f" overlap: {_name(first)} prices the stones in both.",
                    )
                )
    return findings


def _has_band(rule: PricingRule) -> bool:
    bounds = (rule.carats_min, rule.carats_max, rule.cost_min_cents, rule.cost_max_cents)
    return any(bound is not None for bound in bounds)


def _selector(rule: PricingRule) -> tuple[object, ...]:
    def listed(values: list[str] | None) -> frozenset[str] | None:
        return None if values is None else frozenset(values)

    lists = (rule.shapes, rule.labs, rule.colors, rule.clarities)
    return (rule.stone_type, rule.feed, *map(listed, lists))


def example(stones: Box) -> Example:
    """One stone of a (non-empty) box: its lowest carats and cost, a named value where the box names some,
    else a value no rule names (no grade at all, for lab, colour and clarity)."""

    def pick(values: Values, grade: bool) -> str | None:
        if not values.open:
            return min(values.names)
        if grade:
            return None
        return next(f"other{n}" for n in range(len(values.names) + 1) if f"other{n}" not in values.names)

    kind: Any = min(stones.stone_type.names)
    return Example(
        stone_type=kind,
        feed=pick(stones.feed, grade=False) or "",
        shape=pick(stones.shape, grade=False) or "",
        lab=pick(stones.lab, grade=True),
        color=pick(stones.color, grade=True),
        clarity=pick(stones.clarity, grade=True),
        carats=Decimal(stones.carats[0]) / 100,
        cost_cents=stones.cost[0],
    )


# --- sentences


def describe(stones: Box) -> str:
    """The stones of a box in words: only the conditions that narrow them."""
    parts = [" or ".join(sorted(stones.stone_type.names)) + " stones"]
    for name, label in (("feed", "feed"), ("shape", "shape"), ("lab", "lab"), ("color", "colour"),
                        ("clarity", "clarity")):  # fmt: skip
        values: Values = getattr(stones, name)
        if values.open and values.names:
            # a grade the rules list never matches a stone without that grade
            none = " (or none)" if name in ("lab", "color", "clarity") else ""
            parts.append(f"{label} other than {', '.join(sorted(values.names))}{none}")
        elif not values.open:
            parts.append(f"{label} {' or '.join(sorted(values.names))}")
    if stones.carats != CARATS:
        parts.append(f"{_band(stones.carats, CARATS, lambda h: f'{Decimal(h) / 100:.2f}')} ct")
    if stones.cost != COSTS:
        parts.append(f"costing {_band(stones.cost, COSTS, _money)}")
    return ", ".join(parts)


def _band(band: Band, whole: Band, show: Callable[[int], str]) -> str:
    if band[1] == whole[1]:
        return f"{show(band[0])} and over"
    if band[0] == whole[0]:
        return f"under {show(band[1])}"
    return f"{show(band[0])} to under {show(band[1])}"


def _money(cents: Decimal | int) -> str:
    return f"{'-' if cents < 0 else ''}${abs(Decimal(cents)) / 100:,.2f}"


def _name(rule: PricingRule) -> str:
    return f"{rule.name!r} (priority {rule.priority})"
