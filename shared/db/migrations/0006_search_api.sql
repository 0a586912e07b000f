-- The search API: who may call it, the nonces it has seen, the sort orders and indexes it reads,
-- and a dataset version that moves with every catalogue write (it is the API's ETag).

-- API clients and their keys. A key's HMAC secret lives in the secret store (Key Vault in Azure);
-- here it is only a SHA-256, which lets a leaked database reveal nothing and lets the API check that
-- what the store returned is what was issued. A key has several secret versions while it rotates:
-- the old one keeps working until its expires_at (the overlap), the new one from the start.
CREATE TABLE api_clients (
    client_id   text PRIMARY KEY CHECK (client_id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    scopes      text[] NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['search', 'admin']),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE api_keys (
    key_id       text PRIMARY KEY CHECK (key_id ~ '^ck[0-9a-f]{16}$'),
    client_id    text NOT NULL REFERENCES api_clients,
    secret_name  text NOT NULL UNIQUE CHECK (secret_name ~ '^[0-9A-Za-z-]{1,127}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_client ON api_keys (client_id);

CREATE TABLE api_key_secrets (
    key_id          text NOT NULL REFERENCES api_keys,
    secret_version  text NOT NULL CHECK (secret_version ~ '^[0-9A-Za-z-]{1,64}$'),
    secret_sha256   bytea NOT NULL CHECK (length(secret_sha256) = 32),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,                  -- set when a rotation retires this version
    PRIMARY KEY (key_id, secret_version)
);

-- Nonces seen inside the signature tolerance window: a second request with the same key and nonce
-- is a replay. Rows are useless once expires_at passes (the timestamp check rejects them anyway).
CREATE TABLE api_nonces (
    key_id      text NOT NULL,
    nonce       text NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX api_nonces_expiry ON api_nonces (expires_at);

-- Sort orders of the grading scales, best first (D before E; FL before IF). Fancy colours and
-- unknown grades sort last; 99 rather than NULL keeps keyset pagination to plain comparisons.
ALTER TABLE diamonds
    ADD COLUMN color_rank smallint NOT NULL GENERATED ALWAYS AS (
        coalesce(CASE WHEN color ~ '^[D-Z]$' THEN ascii(color) - 67 END, 99)) STORED,
    ADD COLUMN clarity_rank smallint NOT NULL GENERATED ALWAYS AS (
        coalesce(array_position(ARRAY['FL', 'IF', 'VVS1', 'VVS2', 'VS1', 'VS2', 'SI1', 'SI2', 'SI3', 'I1', 'I2',
                                      'I3']::text[], clarity), 99)) STORED;

-- One index per sort order, ending in the tiebreak, so that a keyset page is an index range scan in
-- either direction. The filter indexes serve selective searches through bitmap scans; broad ones
-- walk the sort index and stop after one page. bench/explain.md shows the plans on 1M stones.
CREATE INDEX diamonds_sort_price ON diamonds (price_cents, diamond_id);
CREATE INDEX diamonds_sort_price_per_carat ON diamonds (price_per_carat_cents, diamond_id);
CREATE INDEX diamonds_sort_carats ON diamonds (carats, diamond_id);
CREATE INDEX diamonds_sort_color ON diamonds (color_rank, diamond_id);
CREATE INDEX diamonds_sort_clarity ON diamonds (clarity_rank, diamond_id);
CREATE INDEX diamonds_sort_listed ON diamonds (listed_at, diamond_id);
CREATE INDEX diamonds_shape_price ON diamonds (shape, price_cents, diamond_id);
CREATE INDEX diamonds_shape_carats ON diamonds (shape, carats);
CREATE INDEX diamonds_fancy_color ON diamonds (fancy_color) WHERE fancy_color IS NOT NULL;
CREATE INDEX diamonds_lab ON diamonds (lab);

-- Every statement that changes the catalogue moves the dataset version, so an ETag can never
-- outlive the data it describes (consolidation writes long before a run finalizes).
CREATE FUNCTION caratflow_catalogue_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed) THEN
        UPDATE dataset_version SET version = version + 1, changed_at = now();
    END IF;
    RETURN NULL;
END
$$;

-- (A trigger with transition tables takes one event only.)
CREATE TRIGGER diamonds_inserted AFTER INSERT ON diamonds REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION caratflow_catalogue_changed();
CREATE TRIGGER diamonds_updated AFTER UPDATE ON diamonds REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION caratflow_catalogue_changed();
CREATE TRIGGER diamonds_deleted AFTER DELETE ON diamonds REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION caratflow_catalogue_changed();

-- Rate limits that hold across every instance: a generic cell rate algorithm over rate_budgets,
-- whose next_slot_at is the budget's theoretical arrival time (TAT). A request is admitted when the
-- TAT, moved one interval on, stays within `burst` intervals of now; a refused request leaves the
-- budget as it was. In any window of length w a budget admits at most burst + w / interval.
CREATE FUNCTION caratflow_admit(p_budget text, p_interval interval, p_burst integer,
                                OUT admitted boolean, OUT remaining integer, OUT retry_after_ms bigint,
                                OUT reset_after_ms bigint)
    LANGUAGE plpgsql AS $$
DECLARE
    tat timestamptz;
    t timestamptz;
    allowance interval := p_interval * p_burst;
BEGIN
    INSERT INTO rate_budgets (budget, next_slot_at) VALUES (p_budget, '-infinity') ON CONFLICT (budget) DO NOTHING;
    SELECT b.next_slot_at INTO tat FROM rate_budgets b WHERE b.budget = p_budget FOR UPDATE;
    t := clock_timestamp();                       -- read after the row lock, not before the wait
    tat := greatest(tat, t);
    admitted := tat + p_interval - t <= allowance;
    IF admitted THEN
        tat := tat + p_interval;
        UPDATE rate_budgets SET next_slot_at = tat WHERE budget = p_budget;
        retry_after_ms := 0;
    ELSE
        retry_after_ms := ceil(extract(epoch FROM tat + p_interval - allowance - t) * 1000);
    END IF;
    remaining := greatest(floor(extract(epoch FROM allowance - (tat - t)) / extract(epoch FROM p_interval)), 0);
    reset_after_ms := ceil(extract(epoch FROM tat - t) * 1000);
END
$$;

-- Would one more failure be refused? (Read only: a blocked caller stays blocked, whatever it sends.)
CREATE FUNCTION caratflow_blocked(p_budgets text[], p_interval interval, p_burst integer) RETURNS boolean
    LANGUAGE sql STABLE
    RETURN EXISTS (SELECT 1 FROM rate_budgets
                   WHERE budget = ANY(p_budgets) AND next_slot_at + p_interval - clock_timestamp() > p_interval * p_burst);

-- Everything the API asks of the database for a request whose signature checked out, in one round
-- trip: is its caller blocked by failed attempts, is its nonce new, is it within its rate budget,
-- and which dataset version does it see (the ETag).
CREATE FUNCTION caratflow_api_gate(p_key_id text, p_nonce text, p_nonce_expires_at timestamptz, p_budget text,
                                   p_interval interval, p_burst integer, p_fail_budgets text[],
                                   p_fail_interval interval, p_fail_burst integer,
                                   OUT outcome text, OUT remaining integer, OUT retry_after_ms bigint,
                                   OUT reset_after_ms bigint, OUT dataset_version bigint)
    LANGUAGE plpgsql AS $$
DECLARE
    budget record;
BEGIN
    SELECT version INTO dataset_version FROM dataset_version;
    IF caratflow_blocked(p_fail_budgets, p_fail_interval, p_fail_burst) THEN
        outcome := 'blocked';
        RETURN;
    END IF;
    INSERT INTO api_nonces (key_id, nonce, expires_at) VALUES (p_key_id, p_nonce, p_nonce_expires_at)
        ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        outcome := 'replayed';
        RETURN;
    END IF;
    SELECT * INTO budget FROM caratflow_admit(p_budget, p_interval, p_burst);
    outcome := CASE WHEN budget.admitted THEN 'admitted' ELSE 'limited' END;
    remaining := budget.remaining;
    retry_after_ms := budget.retry_after_ms;
    reset_after_ms := budget.reset_after_ms;
END
$$;
