-- A field the feed sends as an object or a list where text belongs: jsonb_to_record renders it as
-- its JSON text ('{"name": "MEDIUM"}'), which would otherwise be catalogued as the grade itself.
-- Returns the reason naming the first such field, NULL when there is none.
CREATE FUNCTION caratflow_not_text(names text[], vals text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (SELECT f.name || ' must be text, got JSON ' || caratflow_quoted(f.val)
            FROM unnest(names, vals) WITH ORDINALITY AS f(name, val, position)
            WHERE left(ltrim(f.val), 1) IN ('{', '[') ORDER BY f.position LIMIT 1);
