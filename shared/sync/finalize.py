"""Finalizing a run: delist what a complete full run did not see, relist what came back, advance the
watermark, write the summary. Safe to run again for the same run.

The summary is counted from the database, not from what the consolidation activities returned: a
consolidator killed mid-slice returns nothing for the batches it had committed, and a resumed run
starts counting afresh.

Finalize joins the whole catalogue to the raw rows. Right after a first load the planner's statistics
still describe the tables as they were before it (empty, or another feed's), and a nested loop
estimated at one row runs quadratic: 8 minutes for 33k stones. So finalize first analyzes the tables
it reads when they changed a lot since their last analysis, and runs its joins with nested loops off
(hash or merge joins, linear whatever the estimates say).
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row

from shared.db.rows import one
from shared.notify.events import record_event
from shared.runs import dead_letters, lifecycle, partitions
from shared.runs.reads import load_run
from shared.sync.statistics import refresh_statistics

# A stone is delisted when this (complete, full) run did not see it; soft delete with a timestamp.
# An anti-join: a listed stone whose raw row is gone was not seen either.
_DELIST = """
UPDATE diamonds d SET delisted_at = now(), updated_at = now()
WHERE d.feed = %(feed)s AND d.delisted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM raw_stones r
                  WHERE r.feed = d.feed AND r.stone_id = d.stone_id AND r.last_seen_run_id = %(run)s)
"""

# A delisted stone that this run saw again is listed again, even when its payload did not change
# (a changed payload is relisted by consolidation already).
_RELIST = """
UPDATE diamonds d SET delisted_at = NULL, delisted_reason = NULL, listed_at = now(), updated_at = now(),
                      last_seen_run_id = %(run)s
FROM raw_stones r
WHERE d.feed = %(feed)s AND r.feed = d.feed AND r.stone_id = d.stone_id
  AND r.last_seen_run_id = %(run)s AND d.delisted_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM raw_pending q WHERE q.feed = r.feed AND q.stone_id = r.stone_id)
  -- Seen, but its current payload is rejected: it stays off sale until a usable payload maps.
  AND NOT EXISTS (SELECT 1 FROM mapping_rejects m WHERE m.feed = r.feed AND m.stone_id = r.stone_id)
"""


# What this run's consolidation wrote, however many activities (and restarts) it took. Counted
# before relisting, which stamps the run on the stones it lists again. Mapping rejects carry no run:
# only this feed's run consolidates while it is active, so those since the run started are its own.
_CONSOLIDATED = """
SELECT (SELECT count(*) FROM diamonds WHERE feed = %(feed)s AND last_seen_run_id = %(run)s)::int AS catalogued,
       (SELECT count(*) FROM mapping_rejects
        WHERE feed = %(feed)s AND rejected_at >= %(started_at)s)::int AS rejected,
       (SELECT count(*) FROM price_history WHERE run_id = %(run)s)::int AS repriced
"""


def finalize_run(conn: psycopg.Connection, run_id: uuid.UUID) -> dict[str, Any]:
    """Close the run and return its summary. The catalogue is only pruned after a complete full run."""
    run = load_run(conn, run_id)
    refresh_statistics(conn)
    with conn.transaction():
        totals = partitions.totals(conn, run_id)
        timing = lifecycle.lock_for_finalize(conn, run_id)
        if timing["summary"] is not None:
            finalized: dict[str, Any] = timing["summary"]  # finalized already: the same summary again
            return finalized
        params = {"feed": run.feed, "run": run_id}
        with conn.cursor(row_factory=dict_row) as cur:
            consolidated = one(cur.execute(_CONSOLIDATED, {**params, "started_at": timing["started_at"]}).fetchone())
        complete = totals["partitions"] > 0 and totals["fetched_partitions"] == totals["partitions"]
        # Both join every stone of the feed: hash joins, whatever the estimates (see the module's docstring).
        conn.execute("SET LOCAL enable_nestloop = off")
        delisted = conn.execute(_DELIST, params).rowcount if complete and run.kind == "full" else 0
        relisted = conn.execute(_RELIST, params).rowcount
        conn.execute("SET LOCAL enable_nestloop = on")
        if complete:
            conn.execute(
                """INSERT INTO feed_state (feed, watermark, last_full_run_id) VALUES (%(feed)s, %(as_of)s,
                       CASE WHEN %(full)s THEN %(run)s::uuid END)
                   ON CONFLICT (feed) DO UPDATE SET watermark = greatest(feed_state.watermark, EXCLUDED.watermark),
                       last_full_run_id = coalesce(EXCLUDED.last_full_run_id, feed_state.last_full_run_id),
                       updated_at = now()""",
                {**params, "as_of": run.as_of, "full": run.kind == "full"},
            )
        dead_letters.mark_replayed(conn, run_id)
        # The dataset version (the API's ETag) moved with each catalogue write: see migration 0006.
        seconds = max((timing["finished_at"] - timing["started_at"]).total_seconds(), 0.001)
        summary = {
            "run_id": str(run_id),
            "feed": run.feed,
            "kind": run.kind,
            "status": "succeeded" if complete else "partially_succeeded",
            "partitions": totals["partitions"],
            "failed_partitions": totals["failed_partitions"],
            "pages": totals["pages"],
            "fetched": totals["fetched"],
            "new": totals["new"],
            "changed": totals["changed"],
            "unchanged": totals["fetched"] - totals["new"] - totals["changed"],
            "rejected": totals["rejected"] + consolidated["rejected"],
            "delisted": delisted,
            "relisted": relisted,
            "catalogued": consolidated["catalogued"],
            "repriced": consolidated["repriced"],
            "seconds": round(seconds, 3),
            "stones_per_second": round(totals["fetched"] / seconds, 1),
        }
        lifecycle.close_run(conn, run_id, summary)
        # In this transaction: the run's outcome and its notification commit together.
        record_event(conn, "run_succeeded" if complete else "run_partially_succeeded", str(run_id), summary)
    return summary
