"""The price of a stone under a version, in SQL: the one definition consolidation, repricing, preview and
quotes use.

Which rule matches is a CASE generated from the version's rules, in priority order, each WHEN testing only
the conditions its rule has; the matched rule's terms (`pricing_rule_terms`) are then looked up by key and
charged by `caratflow_charge` (migration 0013), which PostgreSQL inlines. No function call and no scan of
the rules per stone, and parallel workers share the work. Measured on this 2-core machine over 1M
synthetic listed stones (embedded PostgreSQL 16): pricing every stone in an aggregate took 1.2 s under
version 1's 7 rules and 2.0 s under 31 rules with lists, roundings and floors, where a LATERAL "first rule
by priority" subquery per stone (a function PostgreSQL inlined) took 7 s, or 5.5 s with its index forced,
and never ran in parallel. Repricing 10k-stone key ranges with it ran at 76% of a plain UPDATE's rate.
An active or retired set never changes, so neither does its CASE; a draft's is generated afresh each time.
"""

from __future__ import annotations

from psycopg import sql

from shared.pricing.rules import PricingRule, RuleSet

_TERMS = ("markup_percent", "markup_cents", "rounding", "rounding_step_cents", "rounding_ending_cents")
_FLOOR = ("floor_cents", "floor_percent")


def price_of(rules: RuleSet, stone: str) -> sql.Composed:
    """A subquery for LATERAL use: `pricing_rule_id` and `price_cents` of the stone aliased `stone`, no row
    when no rule matches it (a set without a catch-all)."""
    cost = sql.Identifier(stone, "cost_cents")
    arguments = sql.SQL(", ").join([cost, *(sql.Identifier("terms", name) for name in _TERMS + _FLOOR)])
    return sql.SQL(
        "(SELECT terms.rule_id AS pricing_rule_id, caratflow_charge({arguments}) AS price_cents"
        " FROM pricing_rule_terms terms WHERE terms.rule_id = {rule_id})"
    ).format(arguments=arguments, rule_id=rule_of(rules, stone))


def rule_of(rules: RuleSet, stone: str) -> sql.Composed:
    """The id of the first rule of `rules` that matches the stone aliased `stone`, NULL if none does."""
    whens = [
        sql.SQL("WHEN {} THEN {}::bigint").format(_conditions(rule, stone), sql.Literal(_stored_id(rule)))
        for rule in rules.rules
    ]
    return sql.SQL("CASE {} END").format(sql.SQL(" ").join(whens))


def _conditions(rule: PricingRule, stone: str) -> sql.Composable:
    def column(name: str) -> sql.Identifier:
        return sql.Identifier(stone, name)

    tests: list[sql.Composable] = []
    if rule.stone_type is not None:
        kind = sql.SQL("caratflow_stone_type({}, {})").format(column("lab_grown"), column("fancy_color"))
        tests.append(sql.SQL("{} = {}").format(kind, sql.Literal(rule.stone_type)))
    if rule.feed is not None:
        tests.append(sql.SQL("{} = {}").format(column("feed"), sql.Literal(rule.feed)))
    for name, values in (
        ("shape", rule.shapes),
        ("lab", rule.labs),
        ("color", rule.colors),
        ("clarity", rule.clarities),
    ):
        if values is not None:
            tests.append(sql.SQL("{} = ANY ({}::text[])").format(column(name), sql.Literal(values)))
    for name, low, high in (
        ("carats", rule.carats_min, rule.carats_max),
        ("cost_cents", rule.cost_min_cents, rule.cost_max_cents),
    ):
        if low is not None:
            tests.append(sql.SQL("{} >= {}").format(column(name), sql.Literal(low)))
        if high is not None:
            tests.append(sql.SQL("{} < {}").format(column(name), sql.Literal(high)))
    return sql.SQL(" AND ").join(tests) if tests else sql.SQL("true")


def _stored_id(rule: PricingRule) -> int:
    if rule.rule_id is None:
        raise ValueError(f"rule {rule.name!r} is not stored: SQL prices only with stored rules")
    return rule.rule_id
