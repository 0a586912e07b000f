-- Raw payloads -> catalogue columns, grade spellings normalised, money in integer cents, and the
-- reason a payload cannot be catalogued. Untrusted values never raise: they map to NULL or a reason.
-- jsonb_to_record reads each JSON object once per row (field-by-field `->` costs ~20x more here);
-- its text columns carry numbers and booleans as their JSON text.
CREATE TEMP TABLE mapped ON COMMIT DROP AS
WITH typed AS MATERIALIZED (
    SELECT
        r.stone_id, r.payload_hash, r.last_seen_run_id,
        jsonb_typeof(d.certificate) = 'object' AS has_certificate,
        caratflow_text(i.id) AS offer_id,
        i.price AS price_text,
        caratflow_numeric(i.price) AS price_raw,
        caratflow_text(d."supplierStockId") AS supplier_stock_id,
        caratflow_text(d.supplier ->> 'id') AS supplier_id,
        caratflow_text(d.supplier ->> 'name') AS supplier_name,
        c.shape AS shape_text,
        caratflow_key(c.shape) AS shape_key,
        c.carats AS carats_text,
        caratflow_numeric(c.carats) AS carats_raw,
        caratflow_key(c.color) AS color_key,
        caratflow_key(c.clarity) AS clarity_key,
        caratflow_key(c.cut) AS cut_key,
        caratflow_key(c.polish) AS polish_key,
        caratflow_key(c.symmetry) AS symmetry_key,
        caratflow_key(c."floInt") AS fluorescence_key,
        caratflow_key(c.lab) AS lab_key,
        d.availability AS availability_text,
        caratflow_key(coalesce(d.availability, 'AVAILABLE')) AS availability_key,
        upper(caratflow_text(c."floCol")) AS fluorescence_color,
        upper(caratflow_text(c.f_color)) AS fancy_color,
        upper(caratflow_text(c.f_intensity)) AS fancy_intensity,
        upper(caratflow_text(c.f_overtone)) AS fancy_overtone,
        CASE c.labgrown WHEN 'true' THEN true WHEN 'false' THEN false END AS lab_grown_raw,
        upper(caratflow_text(c.labgrown_type)) AS lab_grown_type,
        coalesce(c.treated = 'true', false) AS treated,
        caratflow_text(d."eyeClean") AS eye_clean,
        caratflow_text(d.brown) AS brown,
        caratflow_text(d.green) AS green,
        caratflow_text(d.milky) AS milky,
        caratflow_text(d.mine_of_origin) AS mine_of_origin,
        caratflow_numeric(c.length) AS length_mm,
        caratflow_numeric(c.width) AS width_mm,
        caratflow_numeric(c.depth) AS depth_mm,
        caratflow_numeric(c."depthPercentage") AS depth_percent,
        caratflow_numeric(c."table") AS table_percent,
        upper(caratflow_text(c.girdle)) AS girdle,
        upper(caratflow_text(c."culetSize")) AS culet,
        caratflow_numeric(c."crownAngle") AS crown_angle,
        caratflow_numeric(c."crownHeight") AS crown_height,
        caratflow_numeric(c."pavAngle") AS pavilion_angle,
        caratflow_numeric(c."pavDepth") AS pavilion_depth,
        caratflow_text(c."certNumber") AS certificate_number,
        caratflow_text(c."pdfUrl") AS certificate_url,
        caratflow_text(d.image) AS image_url,
        caratflow_text(d.video) AS video_url,
        caratflow_text(d.v360 ->> 'url') AS v360_url,
        caratflow_numeric(d.delivery_time ->> 'min_business_days') AS delivery_min_days,
        caratflow_numeric(d.delivery_time ->> 'max_business_days') AS delivery_max_days,
        caratflow_numeric(d.return_window) AS return_window_days
    FROM raw_pending q
    JOIN raw_stones r ON r.feed = q.feed AND r.stone_id = q.stone_id
    CROSS JOIN LATERAL jsonb_to_record(r.payload) AS i(id text, price text, diamond jsonb)
    CROSS JOIN LATERAL jsonb_to_record(CASE WHEN jsonb_typeof(i.diamond) = 'object' THEN i.diamond END) AS d(
        id text, availability text, "supplierStockId" text, image text, video text, v360 jsonb, "eyeClean" text,
        brown text, green text, milky text, mine_of_origin text, return_window text, delivery_time jsonb,
        supplier jsonb, certificate jsonb)
    CROSS JOIN LATERAL jsonb_to_record(CASE WHEN jsonb_typeof(d.certificate) = 'object' THEN d.certificate END) AS c(
        lab text, "certNumber" text, "pdfUrl" text, shape text, carats text, color text, clarity text, cut text,
        polish text, symmetry text, "floInt" text, "floCol" text, length text, width text, depth text,
        "depthPercentage" text, "table" text, girdle text, "culetSize" text, "crownAngle" text, "crownHeight" text,
        "pavAngle" text, "pavDepth" text, labgrown text, labgrown_type text, treated text, f_color text,
        f_intensity text, f_overtone text)
    WHERE q.feed = %(feed)s AND q.claimed_by = %(worker)s
)
SELECT
    %(feed)s::text AS feed,
    t.stone_id,
    t.offer_id,
    t.supplier_stock_id,
    t.supplier_id,
    t.supplier_name,
    (%(aliases)s::jsonb -> 'shape' ->> t.shape_key) AS shape,
    round(t.carats_raw, 2) AS carats,
    CASE WHEN t.fancy_color IS NULL THEN (%(aliases)s::jsonb -> 'color' ->> t.color_key) END AS color,
    (%(aliases)s::jsonb -> 'clarity' ->> t.clarity_key) AS clarity,
    (%(aliases)s::jsonb -> 'finish' ->> t.cut_key) AS cut,
    (%(aliases)s::jsonb -> 'finish' ->> t.polish_key) AS polish,
    (%(aliases)s::jsonb -> 'finish' ->> t.symmetry_key) AS symmetry,
    (%(aliases)s::jsonb -> 'fluorescence' ->> t.fluorescence_key) AS fluorescence,
    t.fluorescence_color,
    t.fancy_color,
    t.fancy_intensity,
    t.fancy_overtone,
    coalesce(t.lab_grown_raw, %(lab_grown)s) AS lab_grown,
    t.lab_grown_type,
    t.treated,
    t.eye_clean,
    t.brown,
    t.green,
    t.milky,
    t.mine_of_origin,
    caratflow_measure(t.length_mm) AS length_mm,
    caratflow_measure(t.width_mm) AS width_mm,
    caratflow_measure(t.depth_mm) AS depth_mm,
    caratflow_measure(t.depth_percent) AS depth_percent,
    caratflow_measure(t.table_percent) AS table_percent,
    -- Nested, because AND does not promise to test the divisor first.
    CASE WHEN caratflow_measure(t.width_mm) > 0 THEN
        CASE WHEN caratflow_measure(t.length_mm) > 0
             THEN round(caratflow_measure(t.length_mm) / caratflow_measure(t.width_mm), 3) END END AS ratio,
    t.girdle,
    t.culet,
    caratflow_measure(t.crown_angle) AS crown_angle,
    caratflow_measure(t.crown_height) AS crown_height,
    caratflow_measure(t.pavilion_angle) AS pavilion_angle,
    caratflow_measure(t.pavilion_depth) AS pavilion_depth,
    (%(aliases)s::jsonb -> 'lab' ->> t.lab_key) AS lab,
    t.certificate_number,
    t.certificate_url,
    t.image_url,
    t.video_url,
    t.v360_url,
    (%(aliases)s::jsonb -> 'availability' ->> t.availability_key) AS availability,
    caratflow_whole(t.delivery_min_days) AS delivery_min_days,
    -- The catalogue requires max >= min; a supplier that swaps them still means the same window.
    greatest(caratflow_whole(t.delivery_max_days), caratflow_whole(t.delivery_min_days)) AS delivery_max_days,
    caratflow_whole(t.return_window_days) AS return_window_days,
    CASE WHEN t.price_raw >= 0 AND t.price_raw < 1e15 AND t.price_raw = trunc(t.price_raw)
         THEN t.price_raw::bigint END AS cost_cents,
    t.payload_hash,
    t.last_seen_run_id,
    CASE
        WHEN NOT coalesce(t.has_certificate, false) THEN 'certificate missing'
        WHEN (%(aliases)s::jsonb -> 'shape' ->> t.shape_key) IS NULL THEN 'unknown shape ' || coalesce(quote_literal(t.shape_text), 'null')
        WHEN t.carats_raw IS NULL OR round(t.carats_raw, 2) <= 0 OR t.carats_raw >= 100000
            THEN 'carats must be a positive number, got ' || coalesce(quote_literal(t.carats_text), 'null')
        WHEN t.price_raw IS NULL OR t.price_raw < 0 OR t.price_raw >= 1e15 OR t.price_raw <> trunc(t.price_raw)
            THEN 'price must be whole non-negative cents, got ' || coalesce(quote_literal(t.price_text), 'null')
        WHEN (%(aliases)s::jsonb -> 'availability' ->> t.availability_key) IS NULL THEN 'unknown availability ' || quote_literal(t.availability_text)
        WHEN t.offer_id IS NULL THEN 'offer id missing'
    END AS reject_reason
FROM typed t
