-- The first rule of the active version (lowest priority) that matches sets the markup. Empty
-- conditions match anything; bands are half-open. Rounded half-up to the cent, like RuleSet.price.
CREATE TEMP TABLE priced ON COMMIT DROP AS
SELECT m.*,
       greatest(0, round(m.cost_cents * (1 + rule.markup_percent / 100) + rule.markup_cents))::bigint AS price_cents,
       %(version)s::integer AS pricing_version,
       rule.rule_id AS pricing_rule_id
FROM mapped m
LEFT JOIN LATERAL (
    SELECT r.rule_id, r.markup_percent, r.markup_cents
    FROM pricing_rules r
    WHERE r.pricing_version = %(version)s
      AND (r.stone_type IS NULL OR r.stone_type = CASE WHEN m.lab_grown THEN 'lab_grown'
                                                       WHEN m.fancy_color IS NOT NULL THEN 'fancy'
                                                       ELSE 'natural' END)
      AND (r.feed IS NULL OR r.feed = m.feed)
      AND (r.shapes IS NULL OR m.shape = ANY (r.shapes))
      AND (r.carats_min IS NULL OR m.carats >= r.carats_min)
      AND (r.carats_max IS NULL OR m.carats < r.carats_max)
      AND (r.cost_min_cents IS NULL OR m.cost_cents >= r.cost_min_cents)
      AND (r.cost_max_cents IS NULL OR m.cost_cents < r.cost_max_cents)
    ORDER BY r.priority
    LIMIT 1
) AS rule ON true
WHERE m.reject_reason IS NULL
