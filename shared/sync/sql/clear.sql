-- Stones whose payload maps again leave the rejects, before write.sql relists them (migration 0011
-- keeps a stone with a reject off sale).
DELETE FROM mapping_rejects m USING priced p WHERE m.feed = p.feed AND m.stone_id = p.stone_id
