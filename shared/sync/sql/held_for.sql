-- Seconds until the first foreign claim on a pending row lapses; NULL when no pending row is claimed.
SELECT extract(epoch FROM min(claim_expires_at) - clock_timestamp())::float8 FROM raw_stones
WHERE feed = %(feed)s AND consolidated_hash IS DISTINCT FROM payload_hash AND claimed_by IS NOT NULL
