-- Richer pricing rules (issue 13): conditions on lab, colour and clarity lists; a rounding and a floor per
-- rule, with defaults per rule set; and what a matched rule charges (pricing_rule_terms, caratflow_charge).
-- Which rule matches a stone is a CASE generated from the version's rules (shared/pricing/sql.py): the
-- two together are the one SQL definition of "the price of a stone under a version". Every new column is
-- empty on the existing rules and sets, which is exactly the pricing of before: version 1's prices do not
-- move. shared/pricing/ is the same definition in Python; tests/pricing hold the two equal.

-- Lists: NULL matches any stone; an empty list or a NULL element would match none, so neither is allowed.
ALTER TABLE pricing_rules
    ADD COLUMN labs      text[] CHECK (cardinality(labs) > 0 AND array_position(labs, NULL) IS NULL),
    ADD COLUMN colors    text[] CHECK (cardinality(colors) > 0 AND array_position(colors, NULL) IS NULL),
    ADD COLUMN clarities text[] CHECK (cardinality(clarities) > 0 AND array_position(clarities, NULL) IS NULL),
    ADD CONSTRAINT pricing_rules_shapes_check
        CHECK (cardinality(shapes) > 0 AND array_position(shapes, NULL) IS NULL),
    -- Costs are never negative (diamonds.cost_cents), nor are the bands over them (as the model says).
    ADD CONSTRAINT pricing_rules_cost_band_check CHECK (cost_min_cents >= 0 AND cost_max_cents >= 0);

-- A rounding has exactly the parameters its kind takes. Never NULL: a CHECK passes on NULL, which would
-- let a 'multiple' without a step through.
CREATE FUNCTION caratflow_rounding_complete(rounding text, step bigint, ending bigint) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN rounding IS NULL OR rounding IN ('none', 'dollar') THEN step IS NULL AND ending IS NULL
    WHEN rounding = 'multiple' THEN step IS NOT NULL AND step > 0 AND ending IS NULL
    WHEN rounding = 'charm' THEN step IS NOT NULL AND step > 0 AND ending IS NOT NULL AND ending >= 0 AND ending < step
    ELSE false
END;

-- Rounding and floor, the same columns on a rule and on its set (the set's are the defaults).
--   rounding: NULL = the set's (on a set: 'none'); 'none' = to the cent; 'dollar' = half-up to the dollar;
--   'multiple' = up to a multiple of rounding_step_cents; 'charm' = up to the next amount ending in
--   rounding_ending_cents modulo rounding_step_cents (.99 is step 100, ending 99; $x9.99 is 1000, 999).
--   floor: a minimum margin over cost, in cents and/or percent of cost (the larger applies); a rule
--   with neither uses its set's; where a floor applies, the price is never below cost + the floor.
ALTER TABLE pricing_rules
    ADD COLUMN rounding              text,
    ADD COLUMN rounding_step_cents   bigint,
    ADD COLUMN rounding_ending_cents bigint,
    ADD COLUMN floor_cents           bigint CHECK (floor_cents >= 0),
    ADD COLUMN floor_percent         numeric(7, 3) CHECK (floor_percent >= 0),
    ADD CONSTRAINT pricing_rules_rounding_check
        CHECK (caratflow_rounding_complete(rounding, rounding_step_cents, rounding_ending_cents));

ALTER TABLE pricing_rule_sets
    ADD COLUMN rounding              text,
    ADD COLUMN rounding_step_cents   bigint,
    ADD COLUMN rounding_ending_cents bigint,
    ADD COLUMN floor_cents           bigint CHECK (floor_cents >= 0),
    ADD COLUMN floor_percent         numeric(7, 3) CHECK (floor_percent >= 0),
    ADD CONSTRAINT pricing_rule_sets_rounding_check
        CHECK (caratflow_rounding_complete(rounding, rounding_step_cents, rounding_ending_cents));

-- Lab-grown, else fancy colour, else natural (shared/pricing/rules.py: stone_type).
CREATE FUNCTION caratflow_stone_type(lab_grown boolean, fancy_color text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN lab_grown THEN 'lab_grown' WHEN fancy_color IS NOT NULL THEN 'fancy' ELSE 'natural' END;

-- A rule with its set's defaults filled in: its own rounding if it has one, else the set's; its own floor
-- (either column) if it has one, else the set's.
CREATE VIEW pricing_rule_terms AS
SELECT r.rule_id, r.pricing_version, r.priority, r.markup_percent, r.markup_cents,
       CASE WHEN r.rounding IS NULL THEN s.rounding ELSE r.rounding END AS rounding,
       CASE WHEN r.rounding IS NULL THEN s.rounding_step_cents ELSE r.rounding_step_cents END AS rounding_step_cents,
       CASE WHEN r.rounding IS NULL THEN s.rounding_ending_cents ELSE r.rounding_ending_cents END
           AS rounding_ending_cents,
       CASE WHEN r.floor_cents IS NULL AND r.floor_percent IS NULL THEN s.floor_cents ELSE r.floor_cents END
           AS floor_cents,
       CASE WHEN r.floor_cents IS NULL AND r.floor_percent IS NULL THEN s.floor_percent ELSE r.floor_percent END
           AS floor_percent
FROM pricing_rules r JOIN pricing_rule_sets s USING (pricing_version);

-- What a rule's terms charge for a cost, in integer cents (shared/pricing/charge.py is its twin):
--   1. markup: cost x (1 + markup_percent / 100) + markup_cents, half-up to the cent, at least 0;
--   2. floor, where one applies: at least floor = cost + greatest(floor_cents, ceil(cost x floor_percent / 100));
--   3. rounding of that amount p: 'dollar' half-up to the dollar, but never below the floor rounded up to
--      the dollar; 'multiple' up to a multiple of the step; 'charm' up to the next amount ending in the
--      ending modulo the step; 'none' or NULL leaves p. Both upward roundings keep p >= floor.
-- A single expression with no intermediate names, so PostgreSQL inlines it into the calling query (no
-- function call per stone); p appears once per branch, so only the branch taken computes it.
CREATE FUNCTION caratflow_charge(
    cost_cents bigint, markup_percent numeric, markup_cents bigint, rounding text, rounding_step_cents bigint,
    rounding_ending_cents bigint, floor_cents bigint, floor_percent numeric
) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE rounding
    WHEN 'dollar' THEN greatest(
        (greatest(
            greatest(0, round(cost_cents * (1 + markup_percent / 100) + markup_cents))::bigint,
            CASE WHEN floor_cents IS NOT NULL OR floor_percent IS NOT NULL THEN cost_cents + greatest(
                coalesce(floor_cents, 0), ceil(cost_cents * coalesce(floor_percent, 0) * 0.01)::bigint) END
        ) + 50) / 100 * 100,
        (CASE WHEN floor_cents IS NOT NULL OR floor_percent IS NOT NULL THEN cost_cents + greatest(
            coalesce(floor_cents, 0), ceil(cost_cents * coalesce(floor_percent, 0) * 0.01)::bigint) END
        + 99) / 100 * 100)
    WHEN 'multiple' THEN (greatest(
            greatest(0, round(cost_cents * (1 + markup_percent / 100) + markup_cents))::bigint,
            CASE WHEN floor_cents IS NOT NULL OR floor_percent IS NOT NULL THEN cost_cents + greatest(
                coalesce(floor_cents, 0), ceil(cost_cents * coalesce(floor_percent, 0) * 0.01)::bigint) END
        ) + rounding_step_cents - 1) / rounding_step_cents * rounding_step_cents
    WHEN 'charm' THEN rounding_ending_cents + (greatest(
            greatest(0, round(cost_cents * (1 + markup_percent / 100) + markup_cents))::bigint,
            CASE WHEN floor_cents IS NOT NULL OR floor_percent IS NOT NULL THEN cost_cents + greatest(
                coalesce(floor_cents, 0), ceil(cost_cents * coalesce(floor_percent, 0) * 0.01)::bigint) END
        ) - rounding_ending_cents + rounding_step_cents - 1) / rounding_step_cents * rounding_step_cents
    ELSE greatest(
        greatest(0, round(cost_cents * (1 + markup_percent / 100) + markup_cents))::bigint,
        CASE WHEN floor_cents IS NOT NULL OR floor_percent IS NOT NULL THEN cost_cents + greatest(
            coalesce(floor_cents, 0), ceil(cost_cents * coalesce(floor_percent, 0) * 0.01)::bigint) END)
END;
