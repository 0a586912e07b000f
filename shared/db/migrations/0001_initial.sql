-- caratflow's first schema: runs and partitions, raw feed rows, the canonical catalogue,
-- pricing, price history, dead letters, and the shared outbound request budget.
-- Names follow one rule: the column, the pydantic field, the API parameter and the log key agree.

-- One row per (feed) sync run; the durable orchestration instance drives it.
CREATE TABLE runs (
    run_id          uuid PRIMARY KEY,
    feed            text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('full', 'incremental')),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN (
                        'pending', 'planning', 'fetching', 'consolidating', 'finalizing',
                        'succeeded', 'partially_succeeded', 'failed', 'cancelled')),
    trigger         text NOT NULL CHECK (trigger IN ('timer', 'http', 'cli', 'replay')),
    instance_id     text,
    updated_from    timestamptz,            -- incremental runs: the feed's `updated.from`
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    summary         jsonb,
    error           text,
    CHECK (kind = 'incremental' OR updated_from IS NULL),
    CHECK (finished_at IS NULL OR finished_at >= started_at)
);
-- One active run per feed: a timer that fires during a run cannot start a second one.
CREATE UNIQUE INDEX runs_one_active_per_feed ON runs (feed)
    WHERE status IN ('pending', 'planning', 'fetching', 'consolidating', 'finalizing');
CREATE INDEX runs_feed_started ON runs (feed, started_at DESC);

-- A contiguous price-per-carat band of one run, fetched page by page.
CREATE TABLE partitions (
    run_id          uuid NOT NULL REFERENCES runs ON DELETE CASCADE,
    partition_no    integer NOT NULL CHECK (partition_no >= 0),
    dpc_from        integer NOT NULL CHECK (dpc_from >= 0),   -- whole dollars per carat, inclusive
    dpc_to          integer CHECK (dpc_to > dpc_from),        -- exclusive; NULL = open-ended
    expected_count  integer NOT NULL CHECK (expected_count >= 0),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN (
                        'pending', 'fetching', 'fetched', 'failed', 'dead_lettered')),
    next_offset     integer NOT NULL DEFAULT 0 CHECK (next_offset >= 0),  -- checkpoint, same txn as rows
    pages           integer NOT NULL DEFAULT 0 CHECK (pages >= 0),
    rows_fetched    integer NOT NULL DEFAULT 0 CHECK (rows_fetched >= 0),
    rows_rejected   integer NOT NULL DEFAULT 0 CHECK (rows_rejected >= 0),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text,
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, partition_no)
);

-- Raw feed rows, one per supplier stone, exactly as received. Written by fetching only.
CREATE TABLE raw_stones (
    feed              text NOT NULL,
    stone_id          text NOT NULL,          -- the supplier's stone id (diamond.id): the de-duplication key
    offer_id          text NOT NULL,          -- the supplier's offer id (item.id)
    payload           jsonb NOT NULL,
    payload_hash      bytea NOT NULL CHECK (length(payload_hash) = 32),   -- sha256 of the payload
    first_seen_run_id uuid NOT NULL,
    last_seen_run_id  uuid NOT NULL,
    fetched_at        timestamptz NOT NULL DEFAULT now(),
    changed_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (feed, stone_id)
);
CREATE INDEX raw_stones_last_seen ON raw_stones (feed, last_seen_run_id);

-- The consolidation backlog: raw rows whose payload is new or changed and not yet in the catalogue.
-- A narrow queue of its own, so claiming and finishing work never rewrites the wide raw rows.
CREATE TABLE raw_pending (
    feed              text NOT NULL,
    stone_id          text NOT NULL,
    payload_hash      bytea NOT NULL,         -- the payload to consolidate; a newer fetch replaces it
    changed_at        timestamptz NOT NULL DEFAULT now(),
    claimed_by        text,                   -- consolidation lease holder
    claim_expires_at  timestamptz,
    PRIMARY KEY (feed, stone_id),
    FOREIGN KEY (feed, stone_id) REFERENCES raw_stones ON DELETE CASCADE,
    CHECK ((claimed_by IS NULL) = (claim_expires_at IS NULL))
);
CREATE INDEX raw_pending_order ON raw_pending (feed, changed_at, stone_id);
CREATE INDEX raw_pending_claimed ON raw_pending (claimed_by) WHERE claimed_by IS NOT NULL;

-- Items the feed sent that failed validation: kept with the reason, never dropped silently.
CREATE TABLE feed_rejects (
    reject_id     bigserial PRIMARY KEY,
    run_id        uuid NOT NULL REFERENCES runs ON DELETE CASCADE,
    partition_no  integer NOT NULL,
    page_offset   integer NOT NULL CHECK (page_offset >= 0),
    item_index    integer NOT NULL CHECK (item_index >= 0),
    stone_id      text,
    reason        text NOT NULL,
    payload       jsonb NOT NULL,
    rejected_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, partition_no, page_offset, item_index)   -- a re-fetched page records nothing twice
);

-- Versioned pricing: a rule set is immutable once active; each diamond records the version used.
CREATE TABLE pricing_rule_sets (
    pricing_version integer PRIMARY KEY CHECK (pricing_version > 0),
    status          text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'retired')),
    note            text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    activated_at    timestamptz
);
CREATE UNIQUE INDEX pricing_rule_sets_one_active ON pricing_rule_sets ((true)) WHERE status = 'active';

CREATE TABLE pricing_rules (
    rule_id          bigserial PRIMARY KEY,
    pricing_version  integer NOT NULL REFERENCES pricing_rule_sets,
    priority         integer NOT NULL,        -- lower wins
    name             text NOT NULL,
    stone_type       text CHECK (stone_type IN ('natural', 'lab_grown', 'fancy')),   -- NULL = any
    feed             text,                    -- NULL = any
    shapes           text[],                  -- NULL = any
    carats_min       numeric(7, 2),
    carats_max       numeric(7, 2),           -- exclusive
    cost_min_cents   bigint,
    cost_max_cents   bigint,                  -- exclusive
    markup_percent   numeric(7, 3) NOT NULL DEFAULT 0 CHECK (markup_percent > -100),
    markup_cents     bigint NOT NULL DEFAULT 0,
    UNIQUE (pricing_version, priority),
    CHECK (carats_max IS NULL OR carats_min IS NULL OR carats_max > carats_min),
    CHECK (cost_max_cents IS NULL OR cost_min_cents IS NULL OR cost_max_cents > cost_min_cents)
);

-- The canonical catalogue the API serves.
CREATE TABLE diamonds (
    diamond_id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    feed                  text NOT NULL,
    stone_id              text NOT NULL,
    offer_id              text NOT NULL,
    supplier_stock_id     text,
    supplier_id           text,
    supplier_name         text,
    -- grading
    shape                 text NOT NULL,
    carats                numeric(7, 2) NOT NULL CHECK (carats > 0),
    color                 text,                     -- D..Z; NULL for fancy colours
    clarity               text,
    cut                   text,
    polish                text,
    symmetry              text,
    fluorescence          text,
    fluorescence_color    text,
    fancy_color           text,
    fancy_intensity       text,
    fancy_overtone        text,
    lab_grown             boolean NOT NULL,
    lab_grown_type        text,                     -- CVD / HPHT
    treated               boolean NOT NULL DEFAULT false,
    eye_clean             text,
    brown                 text,
    green                 text,
    milky                 text,
    mine_of_origin        text,
    -- measurements
    length_mm             numeric(6, 2),
    width_mm              numeric(6, 2),
    depth_mm              numeric(6, 2),
    depth_percent         numeric(5, 2),
    table_percent         numeric(5, 2),
    ratio                 numeric(6, 3),            -- length / width
    girdle                text,
    culet                 text,
    crown_angle           numeric(5, 2),
    crown_height          numeric(5, 2),
    pavilion_angle        numeric(5, 2),
    pavilion_depth        numeric(5, 2),
    -- certificate and media
    lab                   text,
    certificate_number    text,
    certificate_url       text,
    image_url             text,
    video_url             text,
    v360_url              text,
    -- availability and logistics
    availability          text NOT NULL CHECK (availability IN ('available', 'on_hold', 'memo', 'sold')),
    delivery_min_days     integer CHECK (delivery_min_days >= 0),
    delivery_max_days     integer CHECK (delivery_max_days >= delivery_min_days),
    return_window_days    integer CHECK (return_window_days >= 0),
    -- money, integer cents
    cost_cents            bigint NOT NULL CHECK (cost_cents >= 0),     -- what the supplier charges us
    price_cents           bigint NOT NULL CHECK (price_cents >= 0),    -- what we sell at
    price_per_carat_cents bigint NOT NULL CHECK (price_per_carat_cents >= 0),
    pricing_version       integer NOT NULL REFERENCES pricing_rule_sets,
    pricing_rule_id       bigint REFERENCES pricing_rules,
    payload_hash          bytea NOT NULL,
    -- lifecycle
    first_listed_at       timestamptz NOT NULL DEFAULT now(),
    listed_at             timestamptz NOT NULL DEFAULT now(),    -- last (re)listing
    updated_at            timestamptz NOT NULL DEFAULT now(),
    delisted_at           timestamptz,                           -- soft delete; NULL = listed
    last_seen_run_id      uuid NOT NULL,
    UNIQUE (feed, stone_id)
);

CREATE TABLE price_history (
    price_history_id  bigserial PRIMARY KEY,
    diamond_id        uuid NOT NULL REFERENCES diamonds ON DELETE CASCADE,
    run_id            uuid NOT NULL,
    old_cost_cents    bigint,
    new_cost_cents    bigint NOT NULL,
    old_price_cents   bigint,
    new_price_cents   bigint NOT NULL,
    pricing_version   integer NOT NULL,
    changed_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX price_history_diamond ON price_history (diamond_id, changed_at DESC);

-- Work that kept failing, kept for an operator to replay into the same run.
CREATE TABLE dead_letters (
    dead_letter_id  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id          uuid NOT NULL REFERENCES runs ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('partition', 'consolidation')),
    partition_no    integer,
    input           jsonb NOT NULL,
    error           text NOT NULL,
    attempts        integer NOT NULL CHECK (attempts >= 1),
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'replaying', 'replayed', 'purged')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    CHECK (kind <> 'partition' OR partition_no IS NOT NULL)
);
CREATE INDEX dead_letters_open ON dead_letters (created_at) WHERE status IN ('open', 'replaying');

-- Per-feed progress between runs.
CREATE TABLE feed_state (
    feed              text PRIMARY KEY,
    watermark         timestamptz,            -- advanced only by a successful run
    last_full_run_id  uuid,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Bumped by every run that changes the catalogue; drives API ETags.
CREATE TABLE dataset_version (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version     bigint NOT NULL DEFAULT 1,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO dataset_version DEFAULT VALUES;

-- Outbound request budgets shared by every process: the next free send slot per budget.
CREATE TABLE rate_budgets (
    budget        text PRIMARY KEY,
    next_slot_at  timestamptz NOT NULL DEFAULT '-infinity'
);
