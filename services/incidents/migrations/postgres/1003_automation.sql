-- Automation's reads: least-loaded assignment counts each candidate's open
-- incidents, and the KPIs of one group scan the incidents it opened in a period.
CREATE INDEX incidents_assignee_state ON incidents (assignee, state);
CREATE INDEX incidents_group_created ON incidents (assignment_group, created_at);
