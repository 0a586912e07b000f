"""Pricing rule sets in PostgreSQL."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from shared.pricing.rules import PricingRule, RuleSet


class NoActivePricing(LookupError):
    pass


def active_rule_set(conn: psycopg.Connection) -> RuleSet:
    with conn.cursor(row_factory=dict_row) as cur:
        version = cur.execute("SELECT pricing_version FROM pricing_rule_sets WHERE status = 'active'").fetchone()
        if version is None:
            raise NoActivePricing("no active pricing rule set")
        rows = cur.execute(
            """SELECT rule_id, priority, name, stone_type, feed, shapes, carats_min, carats_max, cost_min_cents,
                      cost_max_cents, markup_percent, markup_cents
               FROM pricing_rules WHERE pricing_version = %s ORDER BY priority""",
            (version["pricing_version"],),
        ).fetchall()
    return RuleSet(version["pricing_version"], [PricingRule(**row) for row in rows])
