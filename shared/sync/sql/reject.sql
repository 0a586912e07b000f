-- Payloads the catalogue cannot hold, with the reason; mapped again when their payload changes.
INSERT INTO mapping_rejects (feed, stone_id, payload_hash, reason)
SELECT feed, stone_id, payload_hash, reject_reason FROM mapped WHERE reject_reason IS NOT NULL
ON CONFLICT (feed, stone_id) DO UPDATE SET payload_hash = EXCLUDED.payload_hash, reason = EXCLUDED.reason,
    rejected_at = now()
