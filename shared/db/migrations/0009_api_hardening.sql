-- API hardening (issue 10): keys the API alone uses for what it hands out and takes back (cursors),
-- and a request gate that neither locks a client out for others' failures nor writes for refusals.

-- Server keys MAC the cursors the API issues, so a caller cannot mint one. The newest key signs, the
-- two newest verify: `caratflow keys rotate-server-key` adds one and the previous keeps working until
-- the next rotation. A key only protects cursors (values are range-checked as well), so it lives here
-- rather than in Key Vault: every instance reads it with the one connection it already has.
CREATE TABLE api_server_keys (
    key_version integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Two v4 UUIDs: 244 random bits from PostgreSQL's own generator, no extension needed.
    secret      bytea NOT NULL DEFAULT (uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())),
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO api_server_keys DEFAULT VALUES;

-- Failed authentications no longer block anyone here: a correctly signed request always passes on
-- to its nonce and rate checks (api/auth.py counts failures per source address and answers the
-- failing caller alone). Refused requests write nothing: a replayed nonce is found by a read, and
-- the nonce of a rate-limited request is not stored (a later replay of that refused request would
-- run it at most once, the nonce's promise).
DROP FUNCTION caratflow_api_gate(text, text, timestamptz, text, interval, integer, text[], interval, integer);
DROP FUNCTION caratflow_blocked(text[], interval, integer);

CREATE FUNCTION caratflow_api_gate(p_key_id text, p_nonce text, p_nonce_expires_at timestamptz, p_budget text,
                                   p_interval interval, p_burst integer,
                                   OUT outcome text, OUT remaining integer, OUT retry_after_ms bigint,
                                   OUT reset_after_ms bigint, OUT dataset_version bigint)
    LANGUAGE plpgsql AS $$
DECLARE
    budget record;
BEGIN
    SELECT version INTO dataset_version FROM dataset_version;
    IF EXISTS (SELECT 1 FROM api_nonces WHERE key_id = p_key_id AND nonce = p_nonce) THEN
        outcome := 'replayed';
        RETURN;
    END IF;
    SELECT * INTO budget FROM caratflow_admit(p_budget, p_interval, p_burst);
    remaining := budget.remaining;
    retry_after_ms := budget.retry_after_ms;
    reset_after_ms := budget.reset_after_ms;
    IF NOT budget.admitted THEN
        outcome := 'limited';
        RETURN;
    END IF;
    INSERT INTO api_nonces (key_id, nonce, expires_at) VALUES (p_key_id, p_nonce, p_nonce_expires_at)
        ON CONFLICT DO NOTHING;
    -- Two copies racing past the read: the second finds the first's row here.
    outcome := CASE WHEN FOUND THEN 'admitted' ELSE 'replayed' END;
END
$$;
