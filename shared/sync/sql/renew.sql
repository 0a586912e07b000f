-- Keep this worker's claims alive while it works.
UPDATE raw_pending SET claim_expires_at = clock_timestamp() + %(lease)s
WHERE feed = %(feed)s AND claimed_by = %(worker)s
