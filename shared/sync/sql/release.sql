-- Done: mark each row consolidated with the hash that was mapped, and drop the claim.
UPDATE raw_stones r SET consolidated_hash = m.payload_hash, claimed_by = NULL, claim_expires_at = NULL
FROM mapped m
WHERE r.feed = %(feed)s AND r.stone_id = m.stone_id AND r.claimed_by = %(worker)s
