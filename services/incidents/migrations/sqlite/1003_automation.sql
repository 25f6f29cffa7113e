-- Same as migrations/postgres/1003_automation.sql (read the comments there).
CREATE INDEX incidents_assignee_state ON incidents (assignee, state);
CREATE INDEX incidents_group_created ON incidents (assignment_group, created_at);
