-- The instant a task SLA reached its target (in its current run: a reset
-- clears it), kept through pauses and after the stop, 0 when not breached.
-- breach_at is only the planned instant of a running clock (TaskSla.breach_time
-- is unset while paused and once final), so reports of breaches read this.
-- Rows saved before this migration read 0 until their next save.
ALTER TABLE task_slas ADD COLUMN breached_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX task_slas_breached_at ON task_slas (breached_at, id);
