-- What the sync records beyond the first schema: the plan and the as-of time of a run, the
-- raw-level outcome of each partition, and payloads that could not be mapped to the catalogue.

ALTER TABLE runs
    ADD COLUMN as_of   timestamptz,    -- the run's start as the orchestrator saw it; the next watermark
    ADD COLUMN plan    jsonb;          -- count queries, scan reuse, expected total

ALTER TABLE partitions
    ADD COLUMN rows_new      integer NOT NULL DEFAULT 0 CHECK (rows_new >= 0),       -- stones never seen before
    ADD COLUMN rows_changed  integer NOT NULL DEFAULT 0 CHECK (rows_changed >= 0);   -- payload differs from the stored one

-- Raw rows whose payload the catalogue cannot hold (unknown shape, no carats...). The raw row is kept;
-- it is mapped again when its payload changes.
CREATE TABLE mapping_rejects (
    feed          text NOT NULL,
    stone_id      text NOT NULL,
    payload_hash  bytea NOT NULL,
    reason        text NOT NULL,
    rejected_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (feed, stone_id)
);
