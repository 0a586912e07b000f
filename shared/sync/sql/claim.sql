-- Claim up to %(limit)s pending rows of a feed for %(worker)s, skipping rows another worker holds.
WITH picked AS (
    SELECT stone_id FROM raw_pending
    WHERE feed = %(feed)s AND (claim_expires_at IS NULL OR claim_expires_at < clock_timestamp())
    ORDER BY changed_at, stone_id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE raw_pending q SET claimed_by = %(worker)s, claim_expires_at = clock_timestamp() + %(lease)s
FROM picked WHERE q.feed = %(feed)s AND q.stone_id = picked.stone_id
