-- The SLA breach escalation path and the caller's time zone (issue 6).
--
-- caller_time_zone: the caller's IANA zone as the tz database spells it
-- ("Europe/Paris"), '' when unknown; SLA definitions counting in the caller's
-- zone read it from the incident events.
-- escalated: 1 once an SLA breached while the incident was open, back to 0
-- when it is resolved, canceled or reopened.
-- escalations: every escalation, oldest first, a JSON array of objects
-- (task_sla, sla_definition, sla_display_name, percentage, time in
-- microseconds, assignment_group, notified, run = the clock's reset count);
-- one per run of a task SLA, which is what makes a repeated breach a no-op.
ALTER TABLE incidents ADD COLUMN caller_time_zone TEXT NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN escalated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN escalations TEXT NOT NULL DEFAULT '[]';

-- ListIncidents' `escalated = true` in the default order (newest first): the
-- filter's expression, then the sort key and the keyset tie-breaker.
CREATE INDEX incidents_escalated_page ON incidents ((escalated <> 0), created_at, id);
