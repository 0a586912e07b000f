-- Notifications: an outbox of events, one delivery per subscribed webhook, every attempt kept.
-- Retention: the indexes the daily sweep (shared/retention) needs to find old rows without scanning
-- whole tables.

-- What happened, recorded in the transaction that made it happen; the deliverer fans it out.
CREATE TABLE notification_events (
    event_id       bigserial PRIMARY KEY,
    event_kind     text NOT NULL CHECK (event_kind IN (
                       'run_succeeded', 'run_partially_succeeded', 'run_failed', 'consolidation_failed',
                       'auth_blocked')),
    subject        text NOT NULL,             -- what it is about: a run id, a caller ('ip:...', 'key:...')
    details        jsonb NOT NULL DEFAULT '{}',
    dedupe_key     text UNIQUE,               -- callers that may report one thing repeatedly record it once
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    fanned_out_at  timestamptz                -- deliveries created, for the webhooks configured then
);
CREATE INDEX notification_events_unfanned ON notification_events (event_id) WHERE fanned_out_at IS NULL;
CREATE INDEX notification_events_occurred ON notification_events (occurred_at);

-- One event to one webhook. `target` is the webhook's name in NOTIFY_WEBHOOKS: its URL is a secret
-- and stays in the settings. An attempt in flight holds its claim by pushing next_attempt_at out.
CREATE TABLE notification_deliveries (
    delivery_id          bigserial PRIMARY KEY,
    event_id             bigint NOT NULL REFERENCES notification_events ON DELETE CASCADE,
    target               text NOT NULL,
    status               text NOT NULL DEFAULT 'pending' CHECK (status IN (
                             'pending', 'delivered', 'failed', 'given_up')),
    attempts             integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- attempts when an operator re-queued it: NOTIFY_MAX_ATTEMPTS counts from here
    requeued_at_attempt  integer NOT NULL DEFAULT 0 CHECK (requeued_at_attempt BETWEEN 0 AND attempts),
    next_attempt_at      timestamptz NOT NULL DEFAULT now(),
    last_status_code     integer,
    last_error           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    delivered_at         timestamptz,
    UNIQUE (event_id, target),               -- an event is never enqueued twice for one webhook
    CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at, delivery_id)
    WHERE status IN ('pending', 'failed');
CREATE INDEX notification_deliveries_status ON notification_deliveries (status, delivery_id DESC);

CREATE TABLE notification_attempts (
    delivery_id   bigint NOT NULL REFERENCES notification_deliveries ON DELETE CASCADE,
    attempt_no    integer NOT NULL CHECK (attempt_no >= 1),
    started_at    timestamptz NOT NULL DEFAULT now(),
    outcome       text CHECK (outcome IN ('delivered', 'retry', 'given_up')),   -- NULL: in flight, or its sender died
    status_code   integer,
    error         text,
    duration_ms   integer CHECK (duration_ms >= 0),
    PRIMARY KEY (delivery_id, attempt_no)
);

-- Retention. Price history is insert-only, so this index costs one entry per price change.
CREATE INDEX price_history_changed ON price_history (changed_at);
-- Partial: listed diamonds (almost all of them) have no entry, so catalogue writes do not pay for it.
CREATE INDEX diamonds_delisted ON diamonds (delisted_at) WHERE delisted_at IS NOT NULL;
