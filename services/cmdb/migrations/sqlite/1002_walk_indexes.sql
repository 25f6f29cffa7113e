-- Impact walks read edges by one end and need the other end, the type and the
-- uid: covering indexes (SQLite has no INCLUDE: the columns are keys).
CREATE INDEX IF NOT EXISTS relationships_target_walk ON relationships (target_id, type, source_id, uid);
CREATE INDEX IF NOT EXISTS relationships_source_walk ON relationships (source_id, type, target_id, uid);
DROP INDEX IF EXISTS relationships_target;
