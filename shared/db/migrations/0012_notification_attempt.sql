-- One name per concept (issue 12): an attempt's number is `attempt` in the column, the model
-- (shared/notify/store.py) and the log records alike, as the feed client already called it.
ALTER TABLE notification_attempts RENAME COLUMN attempt_no TO attempt;
-- The CHECK (attempt >= 1) keeps its old generated name unless it is renamed with the column.
ALTER TABLE notification_attempts
    RENAME CONSTRAINT notification_attempts_attempt_no_check TO notification_attempts_attempt_check;
