-- Write the batch's priced rows and their price history in one statement: `before` reads the
-- prices as they were (every part of the statement sees the same snapshot).
-- New stones are inserted; known ones are rewritten only when their payload, price or pricing
-- version moved, or when they come back after being delisted. A price change (ours or the
-- supplier's) is history; a stone's first price is not.
WITH before AS (
    SELECT d.stone_id, d.cost_cents, d.price_cents
    FROM diamonds d JOIN priced p ON d.feed = p.feed AND d.stone_id = p.stone_id
), written AS (
    INSERT INTO diamonds AS d (
        feed, stone_id, offer_id, supplier_stock_id, supplier_id, supplier_name, shape, carats, color, clarity, cut,
        polish, symmetry, fluorescence, fluorescence_color, fancy_color, fancy_intensity, fancy_overtone, lab_grown,
        lab_grown_type, treated, eye_clean, brown, green, milky, mine_of_origin, length_mm, width_mm, depth_mm,
        depth_percent, table_percent, ratio, girdle, culet, crown_angle, crown_height, pavilion_angle, pavilion_depth,
        lab, certificate_number, certificate_url, image_url, video_url, v360_url, availability, delivery_min_days,
        delivery_max_days, return_window_days, cost_cents, price_cents, price_per_carat_cents, pricing_version,
        pricing_rule_id, payload_hash, last_seen_run_id)
    SELECT
        feed, stone_id, offer_id, supplier_stock_id, supplier_id, supplier_name, shape, carats, color, clarity, cut,
        polish, symmetry, fluorescence, fluorescence_color, fancy_color, fancy_intensity, fancy_overtone, lab_grown,
        lab_grown_type, treated, eye_clean, brown, green, milky, mine_of_origin, length_mm, width_mm, depth_mm,
        depth_percent, table_percent, ratio, girdle, culet, crown_angle, crown_height, pavilion_angle, pavilion_depth,
        lab, certificate_number, certificate_url, image_url, video_url, v360_url, availability, delivery_min_days,
        delivery_max_days, return_window_days, cost_cents, price_cents, round(price_cents / carats)::bigint,
        pricing_version, pricing_rule_id, payload_hash, last_seen_run_id
    FROM priced
    ON CONFLICT (feed, stone_id) DO UPDATE SET
        offer_id = EXCLUDED.offer_id, supplier_stock_id = EXCLUDED.supplier_stock_id,
        supplier_id = EXCLUDED.supplier_id, supplier_name = EXCLUDED.supplier_name, shape = EXCLUDED.shape,
        carats = EXCLUDED.carats, color = EXCLUDED.color, clarity = EXCLUDED.clarity, cut = EXCLUDED.cut,
        polish = EXCLUDED.polish, symmetry = EXCLUDED.symmetry, fluorescence = EXCLUDED.fluorescence,
        fluorescence_color = EXCLUDED.fluorescence_color, fancy_color = EXCLUDED.fancy_color,
        fancy_intensity = EXCLUDED.fancy_intensity, fancy_overtone = EXCLUDED.fancy_overtone,
        lab_grown = EXCLUDED.lab_grown, lab_grown_type = EXCLUDED.lab_grown_type, treated = EXCLUDED.treated,
        eye_clean = EXCLUDED.eye_clean, brown = EXCLUDED.brown, green = EXCLUDED.green, milky = EXCLUDED.milky,
        mine_of_origin = EXCLUDED.mine_of_origin, length_mm = EXCLUDED.length_mm, width_mm = EXCLUDED.width_mm,
        depth_mm = EXCLUDED.depth_mm, depth_percent = EXCLUDED.depth_percent, table_percent = EXCLUDED.table_percent,
        ratio = EXCLUDED.ratio, girdle = EXCLUDED.girdle, culet = EXCLUDED.culet, crown_angle = EXCLUDED.crown_angle,
        crown_height = EXCLUDED.crown_height, pavilion_angle = EXCLUDED.pavilion_angle,
        pavilion_depth = EXCLUDED.pavilion_depth, lab = EXCLUDED.lab, certificate_number = EXCLUDED.certificate_number,
        certificate_url = EXCLUDED.certificate_url, image_url = EXCLUDED.image_url, video_url = EXCLUDED.video_url,
        v360_url = EXCLUDED.v360_url, availability = EXCLUDED.availability,
        delivery_min_days = EXCLUDED.delivery_min_days, delivery_max_days = EXCLUDED.delivery_max_days,
        return_window_days = EXCLUDED.return_window_days, cost_cents = EXCLUDED.cost_cents,
        price_cents = EXCLUDED.price_cents, price_per_carat_cents = EXCLUDED.price_per_carat_cents,
        pricing_version = EXCLUDED.pricing_version, pricing_rule_id = EXCLUDED.pricing_rule_id,
        payload_hash = EXCLUDED.payload_hash, last_seen_run_id = EXCLUDED.last_seen_run_id,
        updated_at = now(),
        listed_at = CASE WHEN d.delisted_at IS NULL THEN d.listed_at ELSE now() END,
        delisted_at = NULL, delisted_reason = NULL
    WHERE d.payload_hash IS DISTINCT FROM EXCLUDED.payload_hash
       OR d.price_cents IS DISTINCT FROM EXCLUDED.price_cents
       OR d.pricing_version IS DISTINCT FROM EXCLUDED.pricing_version
       OR d.delisted_at IS NOT NULL
    RETURNING d.diamond_id, d.stone_id, d.cost_cents, d.price_cents, d.pricing_version, d.last_seen_run_id
), history AS (
    INSERT INTO price_history (diamond_id, run_id, old_cost_cents, new_cost_cents, old_price_cents,
                               new_price_cents, pricing_version)
    SELECT w.diamond_id, w.last_seen_run_id, b.cost_cents, w.cost_cents, b.price_cents, w.price_cents,
           w.pricing_version
    FROM written w JOIN before b USING (stone_id)
    WHERE b.price_cents <> w.price_cents OR b.cost_cents <> w.cost_cents
    RETURNING 1
)
SELECT (SELECT count(*) FROM before) AS existing, (SELECT count(*) FROM written) AS written,
       (SELECT count(*) FROM history) AS repriced
