-- The figures reports aggregate, copied out of the task SLA's doc at each
-- save: business time elapsed (as of updated_at) and the target, both in
-- microseconds. Rows saved before this migration read 0 until their next save.
ALTER TABLE task_slas ADD COLUMN elapsed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE task_slas ADD COLUMN target BIGINT NOT NULL DEFAULT 0;
