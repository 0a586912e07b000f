-- Price the batch under the active version with the one SQL definition of a stone's price
-- (shared/pricing/sql.py, price_of): the first rule by priority that matches, then its markup, floor
-- and rounding. No rule matching leaves pricing_rule_id NULL, which consolidation refuses.
CREATE TEMP TABLE priced ON COMMIT DROP AS
SELECT m.*,
       price.price_cents,
       {version}::integer AS pricing_version,
       price.pricing_rule_id
FROM mapped m
LEFT JOIN LATERAL {price} AS price ON true
WHERE m.reject_reason IS NULL
