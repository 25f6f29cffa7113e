-- How many watchers and links an incident has, kept by the statements that
-- add and remove them: reading one incident skips the query for its
-- watchers and links when there are none, which is most of the time.
ALTER TABLE incidents ADD COLUMN related_count INTEGER NOT NULL DEFAULT 0;
UPDATE incidents SET related_count =
    (SELECT COUNT(*) FROM incident_watchers w WHERE w.incident_id = incidents.id)
    + (SELECT COUNT(*) FROM incident_links l WHERE l.incident_id = incidents.id);
