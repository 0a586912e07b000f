-- State of the local Durable Functions host (local_host/): orchestration instances, their history,
-- the messages waiting to be applied to them (timers included), and activity work items.
-- In Azure the Durable Task backend keeps this state; these tables stay empty there.

CREATE TABLE durable_instances (
    instance_id         text PRIMARY KEY,
    name                text NOT NULL,
    execution_id        uuid NOT NULL,           -- changes on continue-as-new; stale messages are dropped
    status              text NOT NULL CHECK (status IN ('Pending', 'Running', 'Completed', 'Failed', 'Terminated')),
    input               text,                    -- JSON text, as the SDK passes it
    output              text,
    custom_status       text,
    error               text,
    parent_instance_id  text REFERENCES durable_instances ON DELETE CASCADE,
    parent_task_id      integer,
    next_task_id        integer NOT NULL DEFAULT 0,   -- the SDK's task sequence number, mirrored
    actions_seen        integer NOT NULL DEFAULT 0,   -- atomic actions already turned into work
    retries             jsonb NOT NULL DEFAULT '[]',  -- calls with retry options in flight
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((parent_instance_id IS NULL) = (parent_task_id IS NULL))
);
CREATE INDEX durable_instances_status ON durable_instances (status, created_at DESC);
CREATE INDEX durable_instances_parent ON durable_instances (parent_instance_id) WHERE parent_instance_id IS NOT NULL;

CREATE TABLE durable_history (
    instance_id   text NOT NULL REFERENCES durable_instances ON DELETE CASCADE,
    execution_id  uuid NOT NULL,
    seq           integer NOT NULL,
    event         jsonb NOT NULL,
    PRIMARY KEY (instance_id, execution_id, seq)
);

CREATE TABLE durable_messages (
    message_id    bigserial PRIMARY KEY,
    instance_id   text NOT NULL REFERENCES durable_instances ON DELETE CASCADE,
    execution_id  uuid NOT NULL,
    event         jsonb NOT NULL,
    visible_at    timestamptz NOT NULL DEFAULT now()   -- timers: when they fire
);
CREATE INDEX durable_messages_due ON durable_messages (visible_at, message_id);

CREATE TABLE durable_work (
    work_id       bigserial PRIMARY KEY,
    instance_id   text NOT NULL REFERENCES durable_instances ON DELETE CASCADE,
    execution_id  uuid NOT NULL,
    task_id       integer NOT NULL,
    name          text NOT NULL,
    input         text,
    locked_by     text,
    locked_until  timestamptz,
    started_count integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (instance_id, execution_id, task_id),
    CHECK ((locked_by IS NULL) = (locked_until IS NULL))
);
CREATE INDEX durable_work_claimable ON durable_work (locked_until NULLS FIRST, work_id);
