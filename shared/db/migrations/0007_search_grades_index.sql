-- The storefront's usual search names a shape, a few colours and clarities and a carat range. With
-- only the sort indexes, the planner walked the price order and discarded tens of thousands of
-- smaller or lower-grade stones per page; this index finds those matches directly, and the page
-- statement then sorts only them (shared/catalogue/search.py, filter_first). Listed stones only:
-- that is what every search without include_delisted asks for. EXPLAIN at 1M: bench/explain.md.
CREATE INDEX diamonds_grades ON diamonds (shape, color, clarity, carats) WHERE delisted_at IS NULL;
