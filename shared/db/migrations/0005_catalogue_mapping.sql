-- Mapping raw payloads to the catalogue happens in SQL, set-based (measured-here.md: Python per row
-- reaches ~5k rows/s here, SQL ~10x that). These are its building blocks: a spelling key, tolerant
-- casts for untrusted JSON, and the grade vocabularies with the spellings suppliers use.

-- 'very_good ' and 'V.Good' -> 'VERY GOOD' / 'V GOOD': the form aliases are looked up in.
-- (translate, not a regular expression: this runs ~10 times per consolidated row)
CREATE FUNCTION caratflow_key(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN nullif(upper(translate(btrim(value), '_.-', '   ')), '');

-- A number as sent (JSON number or numeric string, as text) -> numeric; NULL for anything else,
-- never an error: one bad value must not fail a whole batch. ('NaN' and 'Infinity' pass this test;
-- every use bounds the value, which excludes them.) STABLE like pg_input_is_valid, so that the
-- planner inlines it (an IMMUTABLE wrapper around a STABLE call is not inlined: 7x slower here).
CREATE FUNCTION caratflow_numeric(value text) RETURNS numeric
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE WHEN pg_input_is_valid(value, 'numeric') THEN value::numeric END;

-- A measurement or percentage: non-negative and below 1000 (the columns' range), rounded to 2 places.
-- Give it a column, not an expression: it reads its argument three times.
CREATE FUNCTION caratflow_measure(value numeric) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN value >= 0 AND value < 1000 THEN round(value, 2) END;

-- A whole, non-negative count (days): NULL when fractional or junk.
CREATE FUNCTION caratflow_whole(value numeric) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN value >= 0 AND value < 100000 AND value = trunc(value) THEN value::integer END;

-- Text as sent, trimmed; NULL when empty.
CREATE FUNCTION caratflow_text(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN nullif(btrim(value), '');

-- Every alias of every vocabulary as one object per vocabulary ({"shape": {"RD": "ROUND", ...}}):
-- the consolidator reads it once per batch and looks spellings up in it without joins.
CREATE TABLE grade_aliases (
    vocabulary  text NOT NULL CHECK (vocabulary IN ('shape', 'color', 'clarity', 'finish', 'fluorescence', 'lab',
                                                    'availability')),
    alias       text NOT NULL CHECK (alias = caratflow_key(alias)),   -- stored in key form
    canonical   text NOT NULL,
    PRIMARY KEY (vocabulary, alias)
);

INSERT INTO grade_aliases (vocabulary, alias, canonical)
SELECT 'shape', caratflow_key(alias), canonical FROM (VALUES
    ('ROUND', 'ROUND'), ('RD', 'ROUND'), ('BR', 'ROUND'), ('ROUND BRILLIANT', 'ROUND'),
    ('OVAL', 'OVAL'), ('OV', 'OVAL'),
    ('CUSHION', 'CUSHION'), ('CU', 'CUSHION'), ('CUSHION MODIFIED', 'CUSHION'), ('CUSHION BRILLIANT', 'CUSHION'),
    ('CMB', 'CUSHION'),
    ('PRINCESS', 'PRINCESS'), ('PR', 'PRINCESS'),
    ('EMERALD', 'EMERALD'), ('EM', 'EMERALD'),
    ('PEAR', 'PEAR'), ('PS', 'PEAR'), ('PE', 'PEAR'),
    ('RADIANT', 'RADIANT'), ('RAD', 'RADIANT'), ('RA', 'RADIANT'),
    ('MARQUISE', 'MARQUISE'), ('MQ', 'MARQUISE'),
    ('ASSCHER', 'ASSCHER'), ('AS', 'ASSCHER'), ('SQ EMERALD', 'ASSCHER'),
    ('HEART', 'HEART'), ('HS', 'HEART'), ('HT', 'HEART')
) AS v(alias, canonical)
UNION ALL
SELECT 'color', c, c FROM unnest(string_to_array('D E F G H I J K L M N O P Q R S T U V W X Y Z', ' ')) AS c
UNION ALL
SELECT 'clarity', caratflow_key(alias), canonical FROM (VALUES
    ('FL', 'FL'), ('FLAWLESS', 'FL'), ('IF', 'IF'), ('INTERNALLY FLAWLESS', 'IF'), ('VVS1', 'VVS1'),
    ('VVS2', 'VVS2'), ('VS1', 'VS1'), ('VS2', 'VS2'), ('SI1', 'SI1'), ('SI2', 'SI2'), ('SI3', 'SI3'),
    ('I1', 'I1'), ('I2', 'I2'), ('I3', 'I3')
) AS v(alias, canonical)
UNION ALL
-- Cut, polish and symmetry share one scale.
SELECT 'finish', caratflow_key(alias), canonical FROM (VALUES
    ('EXCELLENT', 'EXCELLENT'), ('EX', 'EXCELLENT'), ('EXC', 'EXCELLENT'), ('IDEAL', 'EXCELLENT'),
    ('ID', 'EXCELLENT'), ('VERY GOOD', 'VERY GOOD'), ('VG', 'VERY GOOD'), ('V GOOD', 'VERY GOOD'),
    ('VGOOD', 'VERY GOOD'), ('GOOD', 'GOOD'), ('G', 'GOOD'), ('GD', 'GOOD'), ('FAIR', 'FAIR'), ('F', 'FAIR'),
    ('FR', 'FAIR'), ('POOR', 'POOR'), ('P', 'POOR')
) AS v(alias, canonical)
UNION ALL
SELECT 'fluorescence', caratflow_key(alias), canonical FROM (VALUES
    ('NONE', 'NONE'), ('NON', 'NONE'), ('N', 'NONE'), ('NEGLIGIBLE', 'NONE'), ('FAINT', 'FAINT'),
    ('FNT', 'FAINT'), ('F', 'FAINT'), ('SLIGHT', 'FAINT'), ('MEDIUM', 'MEDIUM'), ('MED', 'MEDIUM'),
    ('M', 'MEDIUM'), ('STRONG', 'STRONG'), ('STG', 'STRONG'), ('ST', 'STRONG'), ('S', 'STRONG'),
    ('VERY STRONG', 'VERY STRONG'), ('VST', 'VERY STRONG'), ('VSTG', 'VERY STRONG'), ('VS', 'VERY STRONG')
) AS v(alias, canonical)
UNION ALL
SELECT 'lab', caratflow_key(alias), canonical FROM (VALUES
    ('GIA', 'GIA'), ('IGI', 'IGI'), ('HRD', 'HRD'), ('GCAL', 'GCAL'), ('AGS', 'AGS'), ('EGL', 'EGL'),
    ('GSI', 'GSI'), ('NONE', 'NONE'), ('NON CERT', 'NONE')
) AS v(alias, canonical)
UNION ALL
SELECT 'availability', caratflow_key(alias), canonical FROM (VALUES
    ('AVAILABLE', 'available'), ('ON HOLD', 'on_hold'), ('HOLD', 'on_hold'), ('ONHOLD', 'on_hold'),
    ('MEMO', 'memo'), ('SOLD', 'sold')
) AS v(alias, canonical);
