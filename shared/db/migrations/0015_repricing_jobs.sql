-- Repricing jobs (issue 13; shared/pricing/repricing.py owns the rules and the SQL): activating or reverting a
-- pricing version reprices the catalogue to it in key-range batches, each batch one transaction with its
-- checkpoint here. At most one job is unfinished at a time.

CREATE TABLE repricing_jobs (
    job_id             uuid PRIMARY KEY,
    kind               text NOT NULL CHECK (kind IN ('activate', 'revert')),
    target_version     integer NOT NULL REFERENCES pricing_rule_sets,
    previous_version   integer REFERENCES pricing_rule_sets,  -- active when the job started; a cancel returns to it
    activation_id      bigint,                -- the activate or revert row of pricing_audit the job's outcome ends
    status             text NOT NULL DEFAULT 'pending' CHECK (status IN (
                           'pending', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled')),
    failed_in          text CHECK (failed_in IN ('pending', 'running', 'cancelling')),  -- where a resume picks up
    actor              text NOT NULL CHECK (actor <> ''),
    comment            text NOT NULL DEFAULT '',
    instance_id        text,
    -- The pass under way: the version it converges to (the target; the previous one while cancelling), its
    -- key-range checkpoint (the last diamond_id done; NULL = none yet), where it stops (a cancel's pass goes
    -- back over what the job did, no further; NULL = the end), and whether it is down to its sweep.
    pass_version       integer REFERENCES pricing_rule_sets,
    last_key           uuid,
    stop_key           uuid,
    sweeping           boolean NOT NULL DEFAULT false,
    -- Progress, over every pass: batches applied, stones looked at, stones whose price changed, and the
    -- change of the listed catalogue's retail value.
    total              bigint CHECK (total >= 0),             -- stones in the catalogue when the job started
    batches            integer NOT NULL DEFAULT 0 CHECK (batches >= 0),
    stones             bigint NOT NULL DEFAULT 0 CHECK (stones >= 0),
    repriced           bigint NOT NULL DEFAULT 0 CHECK (repriced >= 0),
    value_delta_cents  bigint NOT NULL DEFAULT 0,
    cancel_requested_at timestamptz,
    cancelled_by       text,
    error              text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    finished_at        timestamptz,
    CHECK ((status = 'failed') = (failed_in IS NOT NULL)),
    CHECK (status NOT IN ('running', 'cancelling', 'succeeded') OR pass_version IS NOT NULL)
);
-- One job at a time: two jobs converging to different versions would undo each other.
CREATE UNIQUE INDEX repricing_jobs_one_unfinished ON repricing_jobs ((true))
    WHERE status IN ('pending', 'running', 'cancelling');
CREATE INDEX repricing_jobs_created ON repricing_jobs (created_at DESC);

-- A price change is made by a sync run (run_id) or by a repricing job (repricing_job_id), never both. No
-- foreign key to the job: a per-row check on every history row of a 10k-stone batch costs more than it guards
-- (the job writes these rows itself, in the transaction that holds the job's row).
ALTER TABLE price_history
    ALTER COLUMN run_id DROP NOT NULL,
    ADD COLUMN repricing_job_id uuid,
    ADD CONSTRAINT price_history_one_author CHECK ((run_id IS NULL) <> (repricing_job_id IS NULL));
