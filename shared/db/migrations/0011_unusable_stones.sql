-- A stone the feed describes unusably is not sold at stale data (issue 11, findings 2, 5 and 6).
--
-- Rule: when a catalogued stone's current payload is rejected by the mapping (unknown shape,
-- implausible carats or price, over-long text...) or refused by the database, the stone is delisted
-- (soft: delisted_at) with the reason in delisted_reason, and mapping_rejects holds the reject. The
-- reject table describes the current state: a stone's row is deleted as soon as a payload of it maps
-- again, and that write relists the stone.

-- Why a delisted stone is off sale: NULL = a complete full run did not see it (finalize.py);
-- otherwise the reject reason of its current payload ('feed reject: ...' when the feed boundary
-- refused it, shared/sync/fetch.py). Finalize never relists a stone with a current mapping reject.
ALTER TABLE diamonds ADD COLUMN delisted_reason text;

COMMENT ON TABLE mapping_rejects IS
    'Stones whose CURRENT raw payload the catalogue cannot hold, with the reason; a row is deleted when the '
    'stone maps again. Not a per-run log: the run summaries count rejects per run.';

-- An optional measurement inside an open range a gemologist would accept, rounded to 2 places;
-- NULL (unknown) outside it. Give it a column, not an expression: it reads its argument three times.
CREATE FUNCTION caratflow_bounded(value numeric, low numeric, high numeric) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN value > low AND value < high THEN round(value, 2) END;

-- A whole number of days up to a year (delivery, return window); NULL when fractional, junk or absurd.
CREATE FUNCTION caratflow_days(value numeric) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN value >= 0 AND value <= 365 AND value = trunc(value) THEN value::integer END;

-- A value as quoted inside a reject reason: at most 60 characters of it, so that a 20 kB value makes
-- a readable reason, not a 20 kB one.
CREATE FUNCTION caratflow_quoted(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN value IS NULL THEN 'null'
                WHEN length(value) <= 60 THEN quote_literal(value)
                ELSE quote_literal(left(value, 60)) || '... (' || length(value) || ' characters)' END;

-- Length / width from the raw measurements, on the 2-place values the catalogue stores; NULL unless both
-- are plausible (0-100 mm) and the ratio is one a cut stone can have (0.2-5; rounds are 1.00, long
-- marquises ~2.5, swapped length and width below 1). Also keeps it inside ratio's numeric(6, 3).
CREATE FUNCTION caratflow_ratio(length_mm numeric, width_mm numeric) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN round(width_mm, 2) > 0 AND width_mm < 100 AND round(length_mm, 2) > 0 AND length_mm < 100 THEN
               CASE WHEN round(length_mm, 2) / round(width_mm, 2) BETWEEN 0.2 AND 5
                    THEN round(round(length_mm, 2) / round(width_mm, 2), 3) END END;

-- The first of the named text values longer than max_chars, as a reject reason naming it; NULL if none.
CREATE FUNCTION caratflow_too_long(names text[], vals text[], max_chars integer, setting text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (SELECT f.name || ' has ' || length(f.val) || ' characters, more than the bound of ' || max_chars
                   || ' (' || setting || ')'
            FROM unnest(names, vals) WITH ORDINALITY AS f(name, val, position)
            WHERE length(f.val) > max_chars ORDER BY f.position LIMIT 1);
