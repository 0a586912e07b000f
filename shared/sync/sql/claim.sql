-- Claim up to %(limit)s pending rows of a feed for %(worker)s, skipping rows another worker holds.
WITH picked AS (
    SELECT stone_id FROM raw_stones
    WHERE feed = %(feed)s AND consolidated_hash IS DISTINCT FROM payload_hash
      AND (claim_expires_at IS NULL OR claim_expires_at < clock_timestamp())
    ORDER BY changed_at, stone_id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE raw_stones r SET claimed_by = %(worker)s, claim_expires_at = clock_timestamp() + %(lease)s
FROM picked WHERE r.feed = %(feed)s AND r.stone_id = picked.stone_id
