-- The rule-set lifecycle and its audit trail (issue 13; shared/pricing/sets.py and audit.py).
-- A set is born a draft; only a draft's rules and defaults change; a set moves draft -> active,
-- active -> retired and retired -> active (a revert), nothing else; an active or retired set is never
-- deleted. The module enforces this and says why; the triggers below enforce it for every other writer.
-- The audit trail is append-only: no UPDATE, DELETE or TRUNCATE of it succeeds.

ALTER TABLE pricing_rule_sets
    ADD COLUMN created_by  text NOT NULL DEFAULT 'system:migration',  -- shared/pricing/audit.py: Actor.label
    ADD COLUMN copied_from integer,              -- no foreign key: the draft it came from may be deleted
    ADD COLUMN revision    integer NOT NULL DEFAULT 1 CHECK (revision > 0),   -- +1 per edit of a draft
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN retired_at  timestamptz;

CREATE FUNCTION caratflow_pricing_set_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status IN ('active', 'retired') THEN
            RAISE EXCEPTION 'pricing version % must be created as a draft', NEW.pricing_version
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'pricing version % is %: only a draft can be deleted', OLD.pricing_version, OLD.status
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.pricing_version <> OLD.pricing_version THEN
        RAISE EXCEPTION 'a pricing version keeps its number' USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF OLD.status = 'draft' AND NEW.status = 'draft' THEN
        RETURN NEW;  -- a draft is edited freely
    END IF;
    IF NEW.status <> OLD.status AND (OLD.status, NEW.status) NOT IN
            (('draft', 'active'), ('active', 'retired'), ('retired', 'active')) THEN
        RAISE EXCEPTION 'pricing version % cannot go from % to %', OLD.pricing_version, OLD.status, NEW.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- Compared as JSON so that a column added later is frozen too without touching this function.
    IF to_jsonb(NEW) - 'status' - 'activated_at' - 'retired_at'
            IS DISTINCT FROM to_jsonb(OLD) - 'status' - 'activated_at' - 'retired_at' THEN
        RAISE EXCEPTION 'pricing version % is %: only its status changes', OLD.pricing_version, OLD.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER pricing_rule_sets_guard BEFORE INSERT OR UPDATE OR DELETE ON pricing_rule_sets
FOR EACH ROW EXECUTE FUNCTION caratflow_pricing_set_guard();

-- A rule changes only with its draft. FOR SHARE waits for a concurrent status change of the set (which
-- takes its row lock) and reads the status it committed, so a rule cannot slip into a set being activated.
CREATE FUNCTION caratflow_pricing_rule_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    version integer;
    found_status text;
BEGIN
    FOREACH version IN ARRAY CASE TG_OP
            WHEN 'INSERT' THEN ARRAY[NEW.pricing_version]
            WHEN 'DELETE' THEN ARRAY[OLD.pricing_version]
            ELSE ARRAY[OLD.pricing_version, NEW.pricing_version] END LOOP
        SELECT status INTO found_status FROM pricing_rule_sets WHERE pricing_version = version FOR SHARE;
        IF found_status IS DISTINCT FROM 'draft' AND found_status IS NOT NULL THEN
            RAISE EXCEPTION 'pricing version % is %: its rules never change', version, found_status
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
    END LOOP;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END;
$$;

CREATE TRIGGER pricing_rules_guard BEFORE INSERT OR UPDATE OR DELETE ON pricing_rules
FOR EACH ROW EXECUTE FUNCTION caratflow_pricing_rule_guard();

-- Who did what to which version, and why. Rows are only ever added. pricing_version has no foreign key: a
-- deleted draft keeps its history (and its number is never given again: sets.py counts these rows too).
CREATE TABLE pricing_audit (
    audit_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    action            text NOT NULL CHECK (action IN ('create', 'copy', 'edit', 'delete_draft', 'activate', 'revert',
                                                      'job_finished', 'job_cancelled', 'job_failed')),
    actor_kind        text NOT NULL CHECK (actor_kind IN ('api_key', 'operator', 'system')),
    actor_name        text NOT NULL CHECK (actor_name <> ''),   -- the API client, the operator or the component
    actor_key_id      text,                                      -- the API key, for actor_kind api_key only
    pricing_version   integer NOT NULL,
    from_version      integer,                 -- copy: the source; edit: itself before; activate/revert: the set replaced
    diff              jsonb,                   -- shared/pricing/diff.py: rules added, removed, changed
    comment           text NOT NULL DEFAULT '',
    activation_id     bigint REFERENCES pricing_audit,   -- a job's row: the activate or revert row it ends
    stones_repriced   bigint CHECK (stones_repriced >= 0),
    value_delta_cents bigint,
    duration_ms       bigint CHECK (duration_ms >= 0),
    details           jsonb NOT NULL DEFAULT '{}',
    CHECK ((actor_kind = 'api_key') = (actor_key_id IS NOT NULL)),
    CHECK (action NOT IN ('activate', 'revert') OR btrim(comment) <> ''),
    CHECK ((action LIKE 'job\_%') = (activation_id IS NOT NULL))
);
CREATE INDEX pricing_audit_version ON pricing_audit (pricing_version, audit_id);
CREATE INDEX pricing_audit_recorded ON pricing_audit (recorded_at);
-- One outcome per activation: a job that records its end twice (a retried activity) adds nothing.
CREATE UNIQUE INDEX pricing_audit_one_outcome ON pricing_audit (activation_id) WHERE activation_id IS NOT NULL;

CREATE FUNCTION caratflow_pricing_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the pricing audit trail is append-only (% refused)', TG_OP
        USING ERRCODE = 'object_not_in_prerequisite_state';
END;
$$;

CREATE TRIGGER pricing_audit_append_only BEFORE UPDATE OR DELETE ON pricing_audit
FOR EACH ROW EXECUTE FUNCTION caratflow_pricing_audit_append_only();
CREATE TRIGGER pricing_audit_no_truncate BEFORE TRUNCATE ON pricing_audit
FOR EACH STATEMENT EXECUTE FUNCTION caratflow_pricing_audit_append_only();
