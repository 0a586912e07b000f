-- Raw payloads -> catalogue columns, grade spellings normalised, money in integer cents, and the
-- reason a payload cannot be catalogued. Untrusted values never raise: they map to NULL or a reason.
-- Bounds (issue 11): carats and the supplier's price per carat outside the plausible ranges
-- (settings plausible_*) and text longer than mapped_text_max_chars / mapped_url_max_chars are
-- rejects naming the field and the bound: the stone cannot be sold on such data. Optional numbers a
-- gemologist would call absurd (mm outside 0-100, percentages outside 0-100, angles outside 0-90,
-- ratio outside 0.2-5, days over a year) map to NULL instead: unknown, and the stone still sells.
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
        c.labgrown AS lab_grown_text,
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
    caratflow_bounded(t.length_mm, 0, 100) AS length_mm,
    caratflow_bounded(t.width_mm, 0, 100) AS width_mm,
    caratflow_bounded(t.depth_mm, 0, 100) AS depth_mm,
    caratflow_bounded(t.depth_percent, 0, 100) AS depth_percent,
    caratflow_bounded(t.table_percent, 0, 100) AS table_percent,
    caratflow_ratio(t.length_mm, t.width_mm) AS ratio,
    t.girdle,
    t.culet,
    caratflow_bounded(t.crown_angle, 0, 90) AS crown_angle,
    caratflow_bounded(t.crown_height, 0, 100) AS crown_height,
    caratflow_bounded(t.pavilion_angle, 0, 90) AS pavilion_angle,
    caratflow_bounded(t.pavilion_depth, 0, 100) AS pavilion_depth,
    (%(aliases)s::jsonb -> 'lab' ->> t.lab_key) AS lab,
    t.certificate_number,
    t.certificate_url,
    t.image_url,
    t.video_url,
    t.v360_url,
    (%(aliases)s::jsonb -> 'availability' ->> t.availability_key) AS availability,
    caratflow_days(t.delivery_min_days) AS delivery_min_days,
    -- The catalogue requires max >= min; a supplier that swaps them still means the same window.
    greatest(caratflow_days(t.delivery_max_days), caratflow_days(t.delivery_min_days)) AS delivery_max_days,
    caratflow_days(t.return_window_days) AS return_window_days,
    CASE WHEN t.price_raw >= 0 AND t.price_raw < 1e15 AND t.price_raw = trunc(t.price_raw)
         THEN t.price_raw::bigint END AS cost_cents,
    t.payload_hash,
    t.last_seen_run_id,
    CASE
        WHEN NOT coalesce(t.has_certificate, false) THEN 'certificate missing'
        WHEN (%(aliases)s::jsonb -> 'shape' ->> t.shape_key) IS NULL THEN 'unknown shape ' || caratflow_quoted(t.shape_text)
        WHEN t.carats_raw IS NULL THEN 'carats must be a number, got ' || caratflow_quoted(t.carats_text)
        WHEN NOT (t.carats_raw >= %(plausible_carats_min)s AND t.carats_raw <= %(plausible_carats_max)s)
            THEN 'carats ' || caratflow_quoted(t.carats_text) || ' outside the plausible range '
                 || %(plausible_carats_min)s || '..' || %(plausible_carats_max)s || ' (plausible_carats_min/max)'
        WHEN t.price_raw IS NULL OR t.price_raw < 0 OR t.price_raw <> trunc(t.price_raw)
            THEN 'price must be whole non-negative cents, got ' || caratflow_quoted(t.price_text)
        -- Per carat of the carats the catalogue stores, like price_per_carat_cents (write.sql).
        WHEN t.price_raw < %(plausible_price_per_carat_min_cents)s * round(t.carats_raw, 2)
            THEN 'price ' || caratflow_quoted(t.price_text) || ' cents for ' || round(t.carats_raw, 2)
                 || ' ct is below the plausible minimum of ' || %(plausible_price_per_carat_min_cents)s
                 || ' cents per carat (plausible_price_per_carat_min_cents)'
        WHEN NOT (t.price_raw <= %(plausible_price_per_carat_max_cents)s * round(t.carats_raw, 2))
            THEN 'price ' || caratflow_quoted(t.price_text) || ' cents for ' || round(t.carats_raw, 2)
                 || ' ct is above the plausible maximum of ' || %(plausible_price_per_carat_max_cents)s
                 || ' cents per carat (plausible_price_per_carat_max_cents)'
        WHEN (%(aliases)s::jsonb -> 'availability' ->> t.availability_key) IS NULL
            THEN 'unknown availability ' || caratflow_quoted(t.availability_text)
        WHEN t.offer_id IS NULL THEN 'offer id missing'
        -- One cheap test per row; the field is named only for the rare row over a bound. Grades are
        -- looked up, not stored, but a 20 kB grade is no grade: a reject too (an unknown short one is NULL).
        WHEN greatest(length(t.offer_id), length(t.supplier_stock_id), length(t.supplier_id),
                      length(t.supplier_name), length(t.fluorescence_color), length(t.fancy_color),
                      length(t.fancy_intensity), length(t.fancy_overtone), length(t.lab_grown_type),
                      length(t.eye_clean), length(t.brown), length(t.green), length(t.milky),
                      length(t.mine_of_origin), length(t.girdle), length(t.culet),
                      length(t.certificate_number), length(t.color_key), length(t.clarity_key), length(t.cut_key),
                      length(t.polish_key), length(t.symmetry_key), length(t.fluorescence_key),
                      length(t.lab_key)) > %(mapped_text_max_chars)s
            THEN caratflow_too_long(
                ARRAY['offer_id', 'supplier_stock_id', 'supplier_id', 'supplier_name', 'fluorescence_color',
                      'fancy_color', 'fancy_intensity', 'fancy_overtone', 'lab_grown_type', 'eye_clean', 'brown',
                      'green', 'milky', 'mine_of_origin', 'girdle', 'culet', 'certificate_number', 'color', 'clarity',
                      'cut', 'polish', 'symmetry', 'fluorescence', 'lab'],
                ARRAY[t.offer_id, t.supplier_stock_id, t.supplier_id, t.supplier_name, t.fluorescence_color,
                      t.fancy_color, t.fancy_intensity, t.fancy_overtone, t.lab_grown_type, t.eye_clean, t.brown,
                      t.green, t.milky, t.mine_of_origin, t.girdle, t.culet, t.certificate_number, t.color_key,
                      t.clarity_key, t.cut_key, t.polish_key, t.symmetry_key, t.fluorescence_key, t.lab_key],
                %(mapped_text_max_chars)s, 'mapped_text_max_chars')
        WHEN greatest(length(t.certificate_url), length(t.image_url), length(t.video_url), length(t.v360_url))
             > %(mapped_url_max_chars)s
            THEN caratflow_too_long(
                ARRAY['certificate_url', 'image_url', 'video_url', 'v360_url'],
                ARRAY[t.certificate_url, t.image_url, t.video_url, t.v360_url],
                %(mapped_url_max_chars)s, 'mapped_url_max_chars')
        -- Grades that decide a price or a certificate: a value we cannot read is not sold as "unknown".
        -- (Cut, polish, symmetry and fluorescence only describe: an unknown one is catalogued as NULL.)
        WHEN t.fancy_color IS NULL AND t.color_key IS NOT NULL
             AND (%(aliases)s::jsonb -> 'color' ->> t.color_key) IS NULL
            THEN 'unknown color ' || caratflow_quoted(t.color_key)
        WHEN t.clarity_key IS NOT NULL AND (%(aliases)s::jsonb -> 'clarity' ->> t.clarity_key) IS NULL
            THEN 'unknown clarity ' || caratflow_quoted(t.clarity_key)
        WHEN t.lab_key IS NOT NULL AND (%(aliases)s::jsonb -> 'lab' ->> t.lab_key) IS NULL
            THEN 'unknown lab ' || caratflow_quoted(t.lab_key)
        -- A lab-grown flag that is neither true nor false would fall back to the feed's default: a
        -- lab-grown stone could be sold as natural.
        WHEN t.lab_grown_text IS NOT NULL AND t.lab_grown_raw IS NULL
            THEN 'labgrown must be true or false, got ' || caratflow_quoted(t.lab_grown_text)
    END AS reject_reason
FROM typed t
