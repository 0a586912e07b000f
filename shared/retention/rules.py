"""What ages out, one rule per table, in the order the sweep applies them.

Each rule is a condition on the table's rows (alias `t`) over the cutoffs of one sweep. The sweep
deletes the rows it matches in batches (SKIP LOCKED, so it never waits on a sync); a dry run counts
them. Rows a delete cascades to (a run's partitions, a diamond's price history, an event's
deliveries) go with their parent and are not counted separately.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql

from shared.config import Settings

# caratflow_admit and the feed's request budget treat a budget whose next slot has passed exactly
# like an absent one, so deleting it changes nothing. The margin keeps the sweep away from budgets in
# use: a delete between caratflow_admit's INSERT ... DO NOTHING and its SELECT would let that one
# request through uncounted.
IDLE_BUDGET_MARGIN = timedelta(hours=1)
_DELETE = """DELETE FROM {table} WHERE ({key}) IN (
    SELECT {key} FROM {table} t WHERE {where} LIMIT %(batch)s FOR UPDATE SKIP LOCKED)"""
_COUNT = "SELECT count(*) FROM {table} t WHERE {where}"
# Runs whose records and raw rows stay whatever their age: each feed's latest complete full run (the
# delisting baseline) and its latest successful run of any kind.
_KEPT_RUNS = """(
    SELECT f.last_full_run_id FROM feed_state f WHERE f.last_full_run_id IS NOT NULL
    UNION ALL
    (SELECT DISTINCT ON (y.feed) y.run_id FROM runs y
     WHERE y.status IN ('succeeded', 'partially_succeeded') ORDER BY y.feed, y.started_at DESC))"""


@dataclass(frozen=True)
class Rule:
    table: str  # also the name of the kind in reports and logs
    key: tuple[str, ...]  # the columns that identify a row
    where: str  # the rows past retention, over the table as `t`; parameters from cutoffs()

    def _compose(self, template: str) -> sql.Composed:
        return sql.SQL(template).format(
            table=sql.Identifier(self.table),
            key=sql.SQL(", ").join(map(sql.Identifier, self.key)),
            where=sql.SQL(self.where).format(kept_runs=sql.SQL(_KEPT_RUNS)),
        )

    @property
    def delete_sql(self) -> sql.Composed:
        return self._compose(_DELETE)

    @property
    def count_sql(self) -> sql.Composed:
        return self._compose(_COUNT)


RULES = (
    # Raw rows of stones no run has seen since the raw cutoff. Kept whatever their age: rows the kept
    # runs saw, rows queued for consolidation, and rows of listed diamonds (the next full run delists
    # a stone through its raw row). Found through the runs that last saw them (an index), which the
    # run rule below keeps while such rows exist.
    Rule(
        "raw_stones",
        ("feed", "stone_id"),
        """(t.feed, t.last_seen_run_id) IN (
                SELECT x.feed, x.run_id FROM runs x
                WHERE x.started_at < %(raw_cutoff)s AND x.finished_at IS NOT NULL AND x.run_id NOT IN {kept_runs})
            AND t.fetched_at < %(raw_cutoff)s
            AND NOT EXISTS (SELECT 1 FROM raw_pending q WHERE q.feed = t.feed AND q.stone_id = t.stone_id)
            AND NOT EXISTS (SELECT 1 FROM diamonds d
                            WHERE d.feed = t.feed AND d.stone_id = t.stone_id AND d.delisted_at IS NULL)""",
    ),
    # A mapping reject describes a raw row; without it, it describes nothing.
    Rule(
        "mapping_rejects",
        ("feed", "stone_id"),
        "NOT EXISTS (SELECT 1 FROM raw_stones r WHERE r.feed = t.feed AND r.stone_id = t.stone_id)",
    ),
    # Delisted diamonds (their price history cascades), once their raw row has gone too: a stone
    # that came back unchanged onto a surviving raw row would not be queued, so never catalogued again.
    Rule(
        "diamonds",
        ("diamond_id",),
        """t.delisted_at < %(delisted_cutoff)s
           AND NOT EXISTS (SELECT 1 FROM raw_stones r WHERE r.feed = t.feed AND r.stone_id = t.stone_id)""",
    ),
    # Old price changes, except each diamond's latest: its current price keeps its history entry.
    Rule(
        "price_history",
        ("price_history_id",),
        """t.changed_at < %(price_history_cutoff)s
           AND EXISTS (SELECT 1 FROM price_history n WHERE n.diamond_id = t.diamond_id
                       AND (n.changed_at, n.price_history_id) > (t.changed_at, t.price_history_id))""",
    ),
    Rule("feed_rejects", ("reject_id",), "t.rejected_at < %(raw_cutoff)s"),
    # Finished runs with their partitions, rejects and resolved dead letters. Never an active run, a
    # kept run, a run with dead letters still to replay, or a run raw rows point to.
    Rule(
        "runs",
        ("run_id",),
        """t.status IN ('succeeded', 'partially_succeeded', 'failed', 'cancelled') AND t.finished_at < %(run_cutoff)s
            AND t.run_id NOT IN {kept_runs}
            AND NOT EXISTS (SELECT 1 FROM dead_letters l
                            WHERE l.run_id = t.run_id AND l.status IN ('open', 'replaying'))
            AND NOT EXISTS (SELECT 1 FROM raw_stones r WHERE r.feed = t.feed AND r.last_seen_run_id = t.run_id)""",
    ),
    # Past expiry a nonce cannot matter: the timestamp check refuses any request that could reuse it.
    Rule("api_nonces", ("key_id", "nonce"), "t.expires_at < %(now)s"),
    Rule("rate_budgets", ("budget",), "t.next_slot_at < %(budget_idle_cutoff)s"),
    # Events whose every delivery is over (delivered or given up); deliveries and attempts cascade.
    Rule(
        "notification_events",
        ("event_id",),
        """t.occurred_at < %(notification_cutoff)s AND t.fanned_out_at IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM notification_deliveries d
                           WHERE d.event_id = t.event_id AND d.status IN ('pending', 'failed'))""",
    ),
)
KINDS = tuple(rule.table for rule in RULES)


def cutoffs(settings: Settings, now: datetime) -> dict[str, Any]:
    """The parameters of every rule: rows older than these have outlived their retention."""
    days = timedelta(days=1)
    return {
        "now": now,
        "raw_cutoff": now - settings.retention_raw_days * days,
        "delisted_cutoff": now - settings.retention_delisted_days * days,
        "price_history_cutoff": now - settings.retention_price_history_days * days,
        "run_cutoff": now - settings.retention_run_days * days,
        "notification_cutoff": now - settings.retention_notification_days * days,
        "budget_idle_cutoff": now - IDLE_BUDGET_MARGIN,
    }


def orchestration_cutoff(settings: Settings, now: datetime) -> datetime:
    """Finished orchestrations created before this have their history purged."""
    return now - timedelta(days=settings.retention_orchestration_days)
