"""The rule-level difference between two rule sets, as the audit trail records it.

Rule ids differ between versions (a copy stores new rows), so rules are paired by what a person would
recognise: first by name where the name is unique on both sides, then the rest by priority. Paired rules
that differ are "changed", with each field's old and new value; the others are added or removed. Lists
(shapes, labs, ...) compare as sets and numbers by value, so 25 and 25.000 are no change.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel

from shared.pricing.rules import PriceAdjustments, PricingRule, RuleSet

_ADJUSTMENTS = tuple(PriceAdjustments.model_fields)
_RULE_FIELDS = tuple(name for name in PricingRule.model_fields if name != "rule_id")


class FieldChange(BaseModel):
    field: str
    old: Any
    new: Any


class RuleChange(BaseModel):
    name: str  # the new name (a rename shows as a change of `name`)
    priority: int  # the new priority
    changes: list[FieldChange]


class RuleSetDiff(BaseModel):
    added: list[PricingRule] = []
    removed: list[PricingRule] = []
    changed: list[RuleChange] = []
    defaults: list[FieldChange] = []  # the set's own rounding and floor

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.defaults)


def diff(old: RuleSet | None, new: RuleSet) -> RuleSetDiff:
    """What turns `old` into `new` (everything added when there is no `old`)."""
    if old is None:
        return RuleSetDiff(added=list(new.rules))
    pairs, removed, added = _pair(old.rules, new.rules)
    changed = []
    for before, after in pairs:
        changes = _changes(before, after, _RULE_FIELDS)
        if changes:
            changed.append(RuleChange(name=after.name, priority=after.priority, changes=changes))
    return RuleSetDiff(
        added=added, removed=removed, changed=changed, defaults=_changes(old.defaults, new.defaults, _ADJUSTMENTS)
    )


def _pair(
    old: list[PricingRule], new: list[PricingRule]
) -> tuple[list[tuple[PricingRule, PricingRule]], list[PricingRule], list[PricingRule]]:
    old_names, new_names = Counter(rule.name for rule in old), Counter(rule.name for rule in new)
    unique = {name for name in old_names if old_names[name] == 1 and new_names[name] == 1}
    by_name = {rule.name: rule for rule in new if rule.name in unique}
    pairs = [(rule, by_name[rule.name]) for rule in old if rule.name in unique]
    old_left = [rule for rule in old if rule.name not in unique]
    new_left = {rule.priority: rule for rule in new if rule.name not in unique}
    removed = []
    for rule in old_left:
        partner = new_left.pop(rule.priority, None)
        if partner is None:
            removed.append(rule)
        else:
            pairs.append((rule, partner))
    pairs.sort(key=lambda pair: pair[1].priority)
    return pairs, removed, sorted(new_left.values(), key=lambda rule: rule.priority)


def _changes(old: BaseModel, new: BaseModel, fields: tuple[str, ...]) -> list[FieldChange]:
    found = []
    for name in fields:
        before, after = getattr(old, name), getattr(new, name)
        if _comparable(before) != _comparable(after):
            found.append(FieldChange(field=name, old=before, new=after))
    return found


def _comparable(value: Any) -> Any:
    return frozenset(value) if isinstance(value, list) else value
