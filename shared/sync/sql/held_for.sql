-- Seconds until the first foreign claim on a pending row lapses; NULL when no pending row is claimed.
SELECT extract(epoch FROM min(claim_expires_at) - clock_timestamp())::float8 FROM raw_pending
WHERE feed = %(feed)s AND claimed_by IS NOT NULL
