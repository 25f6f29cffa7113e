-- The incident practice's schema: everything the v1 contract needs, including
-- tables whose methods come later (tasks, rules, alert intake), so those land
-- without migration churn.
--
-- Conventions: times are microseconds since the epoch (BIGINT) and 0 means
-- "never"; enums are their protobuf numbers (0 = unspecified); booleans are
-- INTEGER 0/1 (one binding for both backends); every column a list filter can
-- name is NOT NULL with a '' or 0 default. `version` is the etag and, for
-- incidents, the sequence of the resource's events. `tenant` waits for
-- multi-tenancy ('' in a single-tenant deployment).

CREATE TABLE incidents (
    -- Keyset tie-breaker and the key child tables reference; never shown.
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- "INC0000042", gap-free (itsm_store::counter "incidents").
    number TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    state INTEGER NOT NULL,
    impact INTEGER NOT NULL,
    urgency INTEGER NOT NULL,
    -- Derived from impact x urgency through priority_matrix_cells when written.
    priority INTEGER NOT NULL,
    caller TEXT NOT NULL,
    category TEXT NOT NULL DEFAULT '',
    subcategory TEXT NOT NULL DEFAULT '',
    service TEXT NOT NULL DEFAULT '',
    configuration_item TEXT NOT NULL DEFAULT '',
    -- The group's id ("network"; identity names it "groups/network").
    assignment_group TEXT NOT NULL DEFAULT '',
    assignee TEXT NOT NULL DEFAULT '',
    channel INTEGER NOT NULL DEFAULT 0,
    hold_reason INTEGER NOT NULL DEFAULT 0,
    resolution_code INTEGER NOT NULL DEFAULT 0,
    resolution_notes TEXT NOT NULL DEFAULT '',
    cancel_reason TEXT NOT NULL DEFAULT '',
    -- MAJOR_STATE_NONE.
    major_state INTEGER NOT NULL DEFAULT 1,
    major_promoted_by_subject TEXT NOT NULL DEFAULT '',
    major_promoted_by_name TEXT NOT NULL DEFAULT '',
    major_promoted_by_kind INTEGER NOT NULL DEFAULT 0,
    major_promoted_at BIGINT NOT NULL DEFAULT 0,
    -- The parent's number, '' when none.
    parent TEXT NOT NULL DEFAULT '',
    child_count INTEGER NOT NULL DEFAULT 0,
    reopen_count INTEGER NOT NULL DEFAULT 0,
    -- Changes of an existing assignment (first-contact resolution needs none).
    reassignment_count INTEGER NOT NULL DEFAULT 0,
    reopened_by_subject TEXT NOT NULL DEFAULT '',
    reopened_by_name TEXT NOT NULL DEFAULT '',
    reopened_by_kind INTEGER NOT NULL DEFAULT 0,
    reopened_at BIGINT NOT NULL DEFAULT 0,
    -- The fingerprint of the alert group that opened it, '' when none.
    alert_group TEXT NOT NULL DEFAULT '',
    -- A JSON object of string to string.
    labels TEXT NOT NULL DEFAULT '{}',
    created_by_subject TEXT NOT NULL,
    created_by_name TEXT NOT NULL,
    created_by_kind INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    acknowledged_at BIGINT NOT NULL DEFAULT 0,
    resolved_at BIGINT NOT NULL DEFAULT 0,
    closed_at BIGINT NOT NULL DEFAULT 0,
    first_contact_resolution INTEGER NOT NULL DEFAULT 0,
    version BIGINT NOT NULL
);
-- The list filters and sort keys, each ending in the id tie-breaker of keyset pages.
CREATE INDEX incidents_created ON incidents (created_at, id);
CREATE INDEX incidents_updated ON incidents (updated_at, id);
CREATE INDEX incidents_state_priority ON incidents (state, priority, id);
CREATE INDEX incidents_priority ON incidents (priority, id);
CREATE INDEX incidents_group ON incidents (assignment_group, id);
CREATE INDEX incidents_assignee ON incidents (assignee, id);
CREATE INDEX incidents_caller ON incidents (caller, id);
CREATE INDEX incidents_parent ON incidents (parent, id);
-- The auto-close job's scan: resolved incidents by resolve time.
CREATE INDEX incidents_resolved ON incidents (state, resolved_at, id);

-- Work notes (kind 1) and comments (kind 2), oldest first.
CREATE TABLE incident_journal (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    kind INTEGER NOT NULL,
    body TEXT NOT NULL,
    author_subject TEXT NOT NULL,
    author_name TEXT NOT NULL,
    author_kind INTEGER NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX incident_journal_incident ON incident_journal (incident_id, created_at, id);

-- Watch lists: subjects notified of changes, who also see the incident as requesters.
CREATE TABLE incident_watchers (
    incident_id BIGINT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    watcher TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (incident_id, watcher)
);
-- "Incidents ada watches", for the requester's list scope.
CREATE INDEX incident_watchers_watcher ON incident_watchers (watcher, incident_id);

-- Links to CIs, problems, changes, articles and other incidents.
CREATE TABLE incident_links (
    incident_id BIGINT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    link_type INTEGER NOT NULL,
    target TEXT NOT NULL,
    created_by_subject TEXT NOT NULL,
    created_by_name TEXT NOT NULL,
    created_by_kind INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (incident_id, link_type, target)
);
-- "Incidents linked to problems/PRB0000042".
CREATE INDEX incident_links_target ON incident_links (target, incident_id);

-- Work under an incident, possibly for another group ("TASK0000007", counter "incident_tasks").
CREATE TABLE incident_tasks (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    incident_id BIGINT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    state INTEGER NOT NULL DEFAULT 1,
    assignment_group TEXT NOT NULL DEFAULT '',
    assignee TEXT NOT NULL DEFAULT '',
    due_at BIGINT NOT NULL DEFAULT 0,
    created_by_subject TEXT NOT NULL,
    created_by_name TEXT NOT NULL,
    created_by_kind INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX incident_tasks_incident ON incident_tasks (incident_id, created_at, id);

-- The impact x urgency -> priority matrix: its version (one row) and its nine cells.
CREATE TABLE priority_matrix (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by_subject TEXT NOT NULL,
    updated_by_name TEXT NOT NULL,
    updated_by_kind INTEGER NOT NULL
);
CREATE TABLE priority_matrix_cells (
    impact INTEGER NOT NULL CHECK (impact BETWEEN 1 AND 3),
    urgency INTEGER NOT NULL CHECK (urgency BETWEEN 1 AND 3),
    priority INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 5),
    PRIMARY KEY (impact, urgency)
);
-- The common default (ITSM.md): priority = impact + urgency - 1.
INSERT INTO priority_matrix (id, version, updated_at, updated_by_subject, updated_by_name, updated_by_kind)
    VALUES (1, 1, 0, 'system:seed', 'seed', 3);
INSERT INTO priority_matrix_cells (impact, urgency, priority) VALUES
    (1, 1, 1), (1, 2, 2), (1, 3, 3),
    (2, 1, 2), (2, 2, 3), (2, 3, 4),
    (3, 1, 3), (3, 2, 4), (3, 3, 5);

-- Practice-wide settings, one row.
CREATE TABLE incident_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    -- Resolved incidents close after this long: 7 days.
    auto_close_after_us BIGINT NOT NULL DEFAULT 604800000000,
    -- An alert group that resolves and fires again this many times within the window flaps.
    flap_threshold INTEGER NOT NULL DEFAULT 3,
    flap_window_us BIGINT NOT NULL DEFAULT 3600000000,
    version BIGINT NOT NULL DEFAULT 1,
    updated_at BIGINT NOT NULL DEFAULT 0,
    updated_by_subject TEXT NOT NULL DEFAULT 'system:seed',
    updated_by_name TEXT NOT NULL DEFAULT 'seed',
    updated_by_kind INTEGER NOT NULL DEFAULT 3
);
INSERT INTO incident_settings (id) VALUES (1);

-- Assignment rules, evaluated by position (then id); first match wins.
CREATE TABLE assignment_rules (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    position INTEGER NOT NULL,
    -- A filter over incident fields, in the list filter language.
    condition TEXT NOT NULL DEFAULT '',
    use_ci_support_group INTEGER NOT NULL DEFAULT 0,
    assignment_group TEXT NOT NULL DEFAULT '',
    strategy INTEGER NOT NULL DEFAULT 1,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_by_subject TEXT NOT NULL,
    created_by_name TEXT NOT NULL,
    created_by_kind INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX assignment_rules_position ON assignment_rules (position, id);

-- Round-robin state per group: who got the last incident.
CREATE TABLE assignment_round_robin (
    assignment_group TEXT PRIMARY KEY,
    last_assignee TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Major-incident trigger rules.
CREATE TABLE major_incident_rules (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    condition TEXT NOT NULL DEFAULT '',
    min_children INTEGER NOT NULL DEFAULT 0,
    children_window_us BIGINT NOT NULL DEFAULT 0,
    action INTEGER NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_by_subject TEXT NOT NULL,
    created_by_name TEXT NOT NULL,
    created_by_kind INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);

-- Monitoring alerts de-duplicated by fingerprint, and the incident each group opened.
CREATE TABLE alert_groups (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL DEFAULT '',
    status INTEGER NOT NULL,
    severity INTEGER NOT NULL DEFAULT 0,
    node TEXT NOT NULL DEFAULT '',
    resource TEXT NOT NULL DEFAULT '',
    metric TEXT NOT NULL DEFAULT '',
    summary TEXT NOT NULL DEFAULT '',
    -- The last itsm.incidents.v1.Alert received, encoded.
    last_alert BYTEA NOT NULL,
    occurrence_count BIGINT NOT NULL DEFAULT 0,
    flap_count INTEGER NOT NULL DEFAULT 0,
    flapping INTEGER NOT NULL DEFAULT 0,
    -- Refires counted towards flapping since this time.
    flap_window_started_at BIGINT NOT NULL DEFAULT 0,
    -- The incident's number, '' when none.
    incident TEXT NOT NULL DEFAULT '',
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    last_resolved_at BIGINT NOT NULL DEFAULT 0,
    version BIGINT NOT NULL
);
CREATE INDEX alert_groups_status ON alert_groups (status, last_seen_at, id);
CREATE INDEX alert_groups_seen ON alert_groups (last_seen_at, id);
CREATE INDEX alert_groups_incident ON alert_groups (incident);
