-- The CMDB's schema: the class model, CIs with their history and versions, the
-- relationship graph, discovery intake, baselines and health findings.
--
-- Conventions (as every practice): times are microseconds since the epoch
-- (BIGINT), 0 means "never"; enums are their protobuf numbers; booleans are
-- INTEGER 0/1; `version` is the etag and the sequence of the resource's events;
-- `tenant` waits for multi-tenancy.
--
-- Most resources keep their full protobuf message in `doc` (BYTEA) and copy
-- into columns only what a query filters, sorts, joins or walks on: a read
-- decodes one value instead of converting dozens of columns, and a new field
-- in the contract needs no migration.

-- The class hierarchy. doc: CiClass as declared (effective_* computed on read).
CREATE TABLE ci_classes (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL DEFAULT '',
    -- The parent's id, '' only for the root "configuration_item".
    parent TEXT NOT NULL DEFAULT '',
    display_name TEXT NOT NULL,
    is_abstract INTEGER NOT NULL DEFAULT 0,
    system INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    doc BYTEA NOT NULL
);
CREATE INDEX ci_classes_parent ON ci_classes (parent, id);

-- Relationship types. doc: RelationshipType.
CREATE TABLE relationship_types (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL DEFAULT '',
    system INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    doc BYTEA NOT NULL
);

-- Configuration items. doc: the whole Ci (attributes, labels, provenance,
-- sightings included); the columns are copies for filters, sorts and walks.
CREATE TABLE cis (
    -- Internal key: what relationships, attributes and history reference.
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The public id: "cis/<uid>".
    uid TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL DEFAULT '',
    ci_class TEXT NOT NULL,
    display_name TEXT NOT NULL,
    status INTEGER NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    support_group TEXT NOT NULL DEFAULT '',
    criticality INTEGER NOT NULL DEFAULT 0,
    -- The location CI's uid, '' when none.
    location TEXT NOT NULL DEFAULT '',
    min_members_up INTEGER NOT NULL DEFAULT 0,
    -- Latest sighting by any discovery source, 0 when never seen by one.
    last_seen_at BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    doc BYTEA NOT NULL
);
CREATE INDEX cis_display_name ON cis (display_name, id);
CREATE INDEX cis_class ON cis (ci_class, display_name, id);
CREATE INDEX cis_support_group ON cis (support_group, display_name, id);
CREATE INDEX cis_status ON cis (status, display_name, id);
CREATE INDEX cis_created ON cis (created_at, id);
CREATE INDEX cis_updated ON cis (updated_at, id);
CREATE INDEX cis_last_seen ON cis (last_seen_at, id);
CREATE INDEX cis_location ON cis (location);

-- Current attribute values, one row per CI and key, for attribute filters and
-- identification. text_value is the value as text (numbers in Rust's shortest
-- form, booleans "true"/"false", dates "YYYY-MM-DD", references the CI's uid);
-- norm_value is text_value trimmed and lower-cased; num_value only for numbers.
CREATE TABLE ci_attributes (
    ci_id BIGINT NOT NULL REFERENCES cis (id),
    key TEXT NOT NULL,
    text_value TEXT NOT NULL,
    norm_value TEXT NOT NULL,
    num_value DOUBLE PRECISION,
    PRIMARY KEY (ci_id, key)
);
CREATE INDEX ci_attributes_norm ON ci_attributes (key, norm_value);
CREATE INDEX ci_attributes_num ON ci_attributes (key, num_value);

-- Which discovery sources have seen which CI, under the source's own key.
CREATE TABLE ci_sightings (
    ci_id BIGINT NOT NULL REFERENCES cis (id),
    -- "sccm" (a discovery source id; "manual" for API edits).
    source TEXT NOT NULL,
    -- The source's correlation id, '' for manual edits.
    correlation_id TEXT NOT NULL DEFAULT '',
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    PRIMARY KEY (ci_id, source, correlation_id)
);
-- A (source, correlation id) pair names one CI: later reports find it directly.
CREATE UNIQUE INDEX ci_sightings_correlation ON ci_sightings (source, correlation_id)
    WHERE correlation_id <> '';

-- Every versioned state of every CI: point-in-time reads and baselines.
-- valid_to is 9223372036854775807 for the current version.
CREATE TABLE ci_versions (
    ci_id BIGINT NOT NULL REFERENCES cis (id),
    version BIGINT NOT NULL,
    valid_from BIGINT NOT NULL,
    valid_to BIGINT NOT NULL,
    doc BYTEA NOT NULL,
    PRIMARY KEY (ci_id, version)
);
CREATE INDEX ci_versions_valid ON ci_versions (valid_to, valid_from);

-- The change history of CIs (CiHistoryEntry): one row per change, its field
-- changes as JSON [{"field","old_value","new_value"}], and `fields` as
-- "|field|field|" so a filter on one field is a LIKE within one CI's rows.
CREATE TABLE ci_history (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ci_id BIGINT NOT NULL REFERENCES cis (id),
    -- The CI's version after the change (0 for relate/unrelate, which do not version it).
    version BIGINT NOT NULL,
    action TEXT NOT NULL,
    source TEXT NOT NULL,
    relationship TEXT NOT NULL DEFAULT '',
    changes TEXT NOT NULL DEFAULT '[]',
    fields TEXT NOT NULL DEFAULT '|',
    actor_subject TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    actor_kind INTEGER NOT NULL,
    request_id TEXT NOT NULL DEFAULT '',
    time BIGINT NOT NULL
);
CREATE INDEX ci_history_ci ON ci_history (ci_id, id);
CREATE INDEX ci_history_ci_time ON ci_history (ci_id, time, id);

-- The graph: directed edges between CIs' internal ids. doc: Relationship.
CREATE TABLE relationships (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL,
    source_id BIGINT NOT NULL REFERENCES cis (id),
    target_id BIGINT NOT NULL REFERENCES cis (id),
    discovery_source TEXT NOT NULL DEFAULT 'manual',
    last_seen_at BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    doc BYTEA NOT NULL
);
CREATE UNIQUE INDEX relationships_edge ON relationships (source_id, type, target_id);
CREATE INDEX relationships_target ON relationships (target_id, type, source_id);
CREATE INDEX relationships_created ON relationships (created_at, id);

-- Deleted relationships, kept for point-in-time reads and baselines.
CREATE TABLE relationships_deleted (
    id BIGINT PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL,
    source_id BIGINT NOT NULL,
    target_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT NOT NULL,
    doc BYTEA NOT NULL
);
CREATE INDEX relationships_deleted_time ON relationships_deleted (deleted_at, created_at);

-- Discovery sources. doc: DiscoverySource.
CREATE TABLE discovery_sources (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL DEFAULT '',
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    doc BYTEA NOT NULL
);

-- Precedence rules. doc: PrecedenceRule.
CREATE TABLE precedence_rules (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL DEFAULT '',
    ci_class TEXT NOT NULL,
    field TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    doc BYTEA NOT NULL
);
CREATE UNIQUE INDEX precedence_rules_target ON precedence_rules (ci_class, field);

-- Parked matches. doc: ParkedMatch. One open match per (source, correlation id).
CREATE TABLE parked_matches (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    state INTEGER NOT NULL,
    reason INTEGER NOT NULL,
    first_report_at BIGINT NOT NULL,
    last_report_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    doc BYTEA NOT NULL
);
CREATE INDEX parked_matches_state ON parked_matches (state, first_report_at, id);
CREATE UNIQUE INDEX parked_matches_open ON parked_matches (source, correlation_id)
    WHERE state = 1;

-- Baselines. doc: Baseline. Members: the CI versions and relationships held.
CREATE TABLE baselines (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL DEFAULT '',
    snapshot_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    doc BYTEA NOT NULL
);
CREATE INDEX baselines_created ON baselines (created_at, id);
CREATE TABLE baseline_cis (
    baseline_id BIGINT NOT NULL REFERENCES baselines (id),
    ci_uid TEXT NOT NULL,
    ci_id BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (baseline_id, ci_uid)
);
CREATE TABLE baseline_relationships (
    baseline_id BIGINT NOT NULL REFERENCES baselines (id),
    uid TEXT NOT NULL,
    -- Relationship as it was (protobuf).
    doc BYTEA NOT NULL,
    PRIMARY KEY (baseline_id, uid)
);

-- The findings of the latest health computation (replaced wholesale).
-- doc: HealthIssue.
CREATE TABLE health_issues (
    kind INTEGER NOT NULL,
    ci_id BIGINT NOT NULL,
    ci_uid TEXT NOT NULL,
    ci_class TEXT NOT NULL,
    support_group TEXT NOT NULL DEFAULT '',
    doc BYTEA NOT NULL,
    PRIMARY KEY (kind, ci_uid)
);
CREATE INDEX health_issues_class ON health_issues (ci_class, kind, ci_uid);

-- Singletons (settings, health report) by name. doc: their message.
CREATE TABLE cmdb_singletons (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    doc BYTEA NOT NULL
);
