-- Done: the rows mapped at the hash still pending leave the queue; a row whose payload a newer
-- fetch replaced meanwhile stays pending, unclaimed, for the next batch.
WITH done AS (
    DELETE FROM raw_pending q USING mapped m
    WHERE q.feed = %(feed)s AND q.stone_id = m.stone_id AND q.claimed_by = %(worker)s
      AND q.payload_hash = m.payload_hash
    RETURNING q.stone_id)
UPDATE raw_pending SET claimed_by = NULL, claim_expires_at = NULL
WHERE feed = %(feed)s AND claimed_by = %(worker)s AND stone_id NOT IN (SELECT stone_id FROM done)
