-- Lock the rows this worker still holds (a lapsed claim taken over by another worker is not ours).
SELECT count(*) FROM (
    SELECT 1 FROM raw_pending WHERE feed = %(feed)s AND claimed_by = %(worker)s FOR UPDATE) AS held
