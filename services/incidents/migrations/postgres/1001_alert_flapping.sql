-- Alert intake: what flap detection and the alert group list need beyond 1000.
--
-- Flapping is counted in windows of IncidentSettings.flap_window that start at
-- the first refire (resolved -> firing) after the previous window ended:
-- `window_flaps` counts the refires of the current window (the window starts at
-- `flap_window_started_at`, from 1000). A flapping group stops flapping once it
-- has gone a whole flap_window without a refire, measured from `last_fired_at`.
ALTER TABLE alert_groups ADD COLUMN window_flaps INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alert_groups ADD COLUMN last_fired_at BIGINT NOT NULL DEFAULT 0;

-- ListAlertGroups' `order_by = "occurrence_count desc"`, with the id tie-breaker.
CREATE INDEX alert_groups_occurrences ON alert_groups (occurrence_count, id);
-- ListAlertGroups' `incident = "incidents/INC0000042"`: the column keeps the
-- number, the filter names the incident as the API does.
CREATE INDEX alert_groups_incident_name ON alert_groups (('incidents/' || incident));
