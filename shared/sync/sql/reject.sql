-- Payloads the catalogue cannot hold, with the reason: each replaces the stone's earlier reject (the
-- table holds the current state; clear.sql removes a stone's row when it maps again). A catalogued
-- stone the feed now describes unusably is not sold at its stale data: it is delisted, with the reason.
WITH rejected AS (
    INSERT INTO mapping_rejects (feed, stone_id, payload_hash, reason)
    SELECT feed, stone_id, payload_hash, reject_reason FROM mapped WHERE reject_reason IS NOT NULL
    ON CONFLICT (feed, stone_id) DO UPDATE SET payload_hash = EXCLUDED.payload_hash, reason = EXCLUDED.reason,
        rejected_at = now()
    RETURNING feed, stone_id, reason
), delisted AS (
    UPDATE diamonds d SET delisted_at = coalesce(d.delisted_at, now()), delisted_reason = r.reason, updated_at = now()
    FROM rejected r
    WHERE d.feed = r.feed AND d.stone_id = r.stone_id
      AND (d.delisted_at IS NULL OR d.delisted_reason IS DISTINCT FROM r.reason)
    RETURNING 1
)
SELECT (SELECT count(*) FROM rejected) AS rejected, (SELECT count(*) FROM delisted) AS delisted
