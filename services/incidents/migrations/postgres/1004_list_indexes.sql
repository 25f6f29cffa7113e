-- Keyset pages of the common lists: a filter on one of these fields, in the
-- default order (create time, newest first), read straight from an index that
-- ends in the sort key and its id tie-breaker instead of sorting the matches.
-- (1003's (assignment_group, created_at) index serves the KPIs; this one the
-- pages, which need the id too.)
CREATE INDEX incidents_group_page ON incidents (assignment_group, created_at, id);
CREATE INDEX incidents_caller_page ON incidents (caller, created_at, id);
CREATE INDEX incidents_state_page ON incidents (state, created_at, id);
CREATE INDEX incidents_assignee_page ON incidents (assignee, created_at, id);
