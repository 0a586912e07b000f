-- Every item a run fetched is accounted for (issue 11): a stone id served twice in one run keeps one
-- winning item in raw_stones and records each losing item in feed_duplicates, naming the winner.

-- Which item of run `last_seen_run_id` the raw row holds: its rank key (price) and its position.
-- NULL on rows written before this migration (they hold no item of a run that can still be fetching).
ALTER TABLE raw_stones
    ADD COLUMN seen_price        numeric,    -- the item's price in cents as validated (may exceed bigint)
    ADD COLUMN seen_partition_no integer,
    ADD COLUMN seen_page_offset  integer,
    ADD COLUMN seen_item_index   integer;

-- Duplicates recorded by the pages of a partition (losing items and displaced winners).
ALTER TABLE partitions ADD COLUMN rows_duplicate integer NOT NULL DEFAULT 0 CHECK (rows_duplicate >= 0);

-- One row per losing item, listed per run: SELECT * FROM feed_duplicates WHERE run_id = ...
CREATE TABLE feed_duplicates (
    run_id              uuid NOT NULL REFERENCES runs ON DELETE CASCADE,
    feed                text NOT NULL,
    partition_no        integer NOT NULL,    -- where the losing item was served
    page_offset         integer NOT NULL CHECK (page_offset >= 0),
    item_index          integer NOT NULL CHECK (item_index >= 0),
    stone_id            text NOT NULL,
    offer_id            text NOT NULL,
    price_cents         numeric,             -- NULL only when the item came without a validated price
    payload_hash        bytea NOT NULL CHECK (length(payload_hash) = 32),
    payload             jsonb NOT NULL,      -- the losing item as served: nothing the feed sent is lost
    winner_partition_no integer NOT NULL,    -- the item raw_stones holds for this stone in this run
    winner_page_offset  integer NOT NULL,
    winner_item_index   integer NOT NULL,
    winner_offer_id     text NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, partition_no, page_offset, item_index)
);
CREATE INDEX feed_duplicates_stone ON feed_duplicates (run_id, feed, stone_id);
