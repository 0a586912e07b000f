"""Pricing rule sets in PostgreSQL."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from shared.pricing.rules import PriceAdjustments, PricingRule, RuleSet


class NoActivePricing(LookupError):
    pass


def active_rule_set(conn: psycopg.Connection) -> RuleSet:
    active = conn.execute("SELECT pricing_version FROM pricing_rule_sets WHERE status = 'active'").fetchone()
    if active is None:
        raise NoActivePricing("no active pricing rule set")
    return rule_set(conn, active[0])


def rule_set(conn: psycopg.Connection, version: int) -> RuleSet:
    """The rules of `version` with its defaults; LookupError if there is no such version."""
    with conn.cursor(row_factory=dict_row) as cur:
        defaults = cur.execute(
            """SELECT rounding, rounding_step_cents, rounding_ending_cents, floor_cents, floor_percent
               FROM pricing_rule_sets WHERE pricing_version = %s""",
            (version,),
        ).fetchone()
        if defaults is None:
            raise LookupError(f"no pricing version {version}")
        rows = cur.execute(
            """SELECT rule_id, priority, name, stone_type, feed, shapes, labs, colors, clarities, carats_min,
                      carats_max, cost_min_cents, cost_max_cents, markup_percent, markup_cents, rounding,
                      rounding_step_cents, rounding_ending_cents, floor_cents, floor_percent
               FROM pricing_rules WHERE pricing_version = %s ORDER BY priority""",
            (version,),
        ).fetchall()
    return RuleSet(version, [PricingRule(**row) for row in rows], PriceAdjustments(**defaults))
