"""Planner statistics the sync's statements can trust, refreshed when a table changed a lot.

Right after a first load the statistics still describe the tables as they were before it (empty, or
another feed's), and a join the planner estimates at one row runs as a quadratic nested loop (8
minutes for 33k stones in finalize). Autovacuum analyzes on its own schedule, which a first load
outruns, so consolidation and finalize call `refresh_statistics` before their joins.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

# The tables the sync joins, and the columns its statements read of the wide raw rows.
_ANALYZED = {"diamonds": (), "raw_stones": ("feed", "stone_id", "last_seen_run_id"), "raw_pending": ()}
# Analyze a table when this share of its rows changed since its last analysis (autovacuum's default
# is the same 10%, but it runs on its own schedule: a first load is finalized before it comes).
_STALE_SHARE = 0.1
_STALE = """
SELECT c.relname FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.oid = ANY (%s::regclass[])
  AND (coalesce(s.last_analyze, s.last_autoanalyze) IS NULL
       OR s.n_mod_since_analyze > %s * greatest(c.reltuples, 0) + 1000)
"""


def refresh_statistics(conn: psycopg.Connection) -> list[str]:
    """Analyze the sync's tables that changed a lot since their last analysis; return their names."""
    stale = [name for (name,) in conn.execute(_STALE, (list(_ANALYZED), _STALE_SHARE))]
    for name in stale:
        columns = sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Identifier, _ANALYZED[name])))
        conn.execute(sql.SQL("ANALYZE {} {}").format(sql.Identifier(name), columns if _ANALYZED[name] else sql.SQL("")))
    return stale
