-- Impact walks read edges by one end and need the other end, the type and the
-- uid: covering indexes make each hop an index-only scan with one probe per
-- CI (the (target_id, type, source_id) index took one probe per CI and type,
-- then a heap visit per edge).
CREATE INDEX IF NOT EXISTS relationships_target_walk ON relationships (target_id) INCLUDE (type, source_id, uid);
CREATE INDEX IF NOT EXISTS relationships_source_walk ON relationships (source_id) INCLUDE (type, target_id, uid);
DROP INDEX IF EXISTS relationships_target;
