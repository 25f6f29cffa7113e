-- Same schema as migrations/postgres/1000_incidents.sql (read the comments
-- there), in SQLite's dialect.

CREATE TABLE incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    number TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    state INTEGER NOT NULL,
    impact INTEGER NOT NULL,
    urgency INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    caller TEXT NOT NULL,
    category TEXT NOT NULL DEFAULT '',
    subcategory TEXT NOT NULL DEFAULT '',
    service TEXT NOT NULL DEFAULT '',
    configuration_item TEXT NOT NULL DEFAULT '',
    assignment_group TEXT NOT NULL DEFAULT '',
    assignee TEXT NOT NULL DEFAULT '',
    channel INTEGER NOT NULL DEFAULT 0,
    hold_reason INTEGER NOT NULL DEFAULT 0,
    resolution_code INTEGER NOT NULL DEFAULT 0,
    resolution_notes TEXT NOT NULL DEFAULT '',
    cancel_reason TEXT NOT NULL DEFAULT '',
    major_state INTEGER NOT NULL DEFAULT 1,
    major_promoted_by_subject TEXT NOT NULL DEFAULT '',
    major_promoted_by_name TEXT NOT NULL DEFAULT '',
    major_promoted_by_kind INTEGER NOT NULL DEFAULT 0,
    major_promoted_at INTEGER NOT NULL DEFAULT 0,
    parent TEXT NOT NULL DEFAULT '',
    child_count INTEGER NOT NULL DEFAULT 0,
    reopen_count INTEGER NOT NULL DEFAULT 0,
    reassignment_count INTEGER NOT NULL DEFAULT 0,
    reopened_by_subject TEXT NOT NULL DEFAULT '',
    reopened_by_name TEXT NOT NULL DEFAULT '',
    reopened_by_kind INTEGER NOT NULL DEFAULT 0,
    reopened_at INTEGER NOT NULL DEFAULT 0,
    alert_group TEXT NOT NULL DEFAULT '',
    labels TEXT NOT NULL DEFAULT '{}',
    created_by_subject TEXT NOT NULL,
    created_by_name TEXT NOT NULL,
    created_by_kind INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    acknowledged_at INTEGER NOT NULL DEFAULT 0,
    resolved_at INTEGER NOT NULL DEFAULT 0,
    closed_at INTEGER NOT NULL DEFAULT 0,
    first_contact_resolution INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL
);
CREATE INDEX incidents_created ON incidents (created_at, id);
CREATE INDEX incidents_updated ON incidents (updated_at, id);
CREATE INDEX incidents_state_priority ON incidents (state, priority, id);
CREATE INDEX incidents_priority ON incidents (priority, id);
CREATE INDEX incidents_group ON incidents (assignment_group, id);
CREATE INDEX incidents_assignee ON incidents (assignee, id);
CREATE INDEX incidents_caller ON incidents (caller, id);
CREATE INDEX incidents_parent ON incidents (parent, id);
CREATE INDEX incidents_resolved ON incidents (state, resolved_at, id);

CREATE TABLE incident_journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    kind INTEGER NOT NULL,
    body TEXT NOT NULL,
    author_subject TEXT NOT NULL,
    author_name TEXT NOT NULL,
    author_kind INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX incident_journal_incident ON incident_journal (incident_id, created_at, id);

CREATE TABLE incident_watchers (
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    watcher TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (incident_id, watcher)
);
CREATE INDEX incident_watchers_watcher ON incident_watchers (watcher, incident_id);

CREATE TABLE incident_links (
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    link_type INTEGER NOT NULL,
    target TEXT NOT NULL,
    created_by_subject TEXT NOT NULL,
    created_by_name TEXT NOT NULL,
    created_by_kind INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (incident_id, link_type, target)
);
CREATE INDEX incident_links_target ON incident_links (target, incident_id);

CREATE TABLE incident_tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    number TEXT NOT NULL UNIQUE,
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    state INTEGER NOT NULL DEFAULT 1,
    assignment_group TEXT NOT NULL DEFAULT '',
    assignee TEXT NOT NULL DEFAULT '',
    due_at INTEGER NOT NULL DEFAULT 0,
    created_by_subject TEXT NOT NULL,
    created_by_name TEXT NOT NULL,
    created_by_kind INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX incident_tasks_incident ON incident_tasks (incident_id, created_at, id);

CREATE TABLE priority_matrix (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
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
INSERT INTO priority_matrix (id, version, updated_at, updated_by_subject, updated_by_name, updated_by_kind)
    VALUES (1, 1, 0, 'system:seed', 'seed', 3);
INSERT INTO priority_matrix_cells (impact, urgency, priority) VALUES
    (1, 1, 1), (1, 2, 2), (1, 3, 3),
    (2, 1, 2), (2, 2, 3), (2, 3, 4),
    (3, 1, 3), (3, 2, 4), (3, 3, 5);

CREATE TABLE incident_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    auto_close_after_us INTEGER NOT NULL DEFAULT 604800000000,
    flap_threshold INTEGER NOT NULL DEFAULT 3,
    flap_window_us INTEGER NOT NULL DEFAULT 3600000000,
    version INTEGER NOT NULL DEFAULT 1,
    updated_at INTEGER NOT NULL DEFAULT 0,
    updated_by_subject TEXT NOT NULL DEFAULT 'system:seed',
    updated_by_name TEXT NOT NULL DEFAULT 'seed',
    updated_by_kind INTEGER NOT NULL DEFAULT 3
);
INSERT INTO incident_settings (id) VALUES (1);

CREATE TABLE assignment_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    position INTEGER NOT NULL,
    condition TEXT NOT NULL DEFAULT '',
    use_ci_support_group INTEGER NOT NULL DEFAULT 0,
    assignment_group TEXT NOT NULL DEFAULT '',
    strategy INTEGER NOT NULL DEFAULT 1,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_by_subject TEXT NOT NULL,
    created_by_name TEXT NOT NULL,
    created_by_kind INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX assignment_rules_position ON assignment_rules (position, id);

CREATE TABLE assignment_round_robin (
    assignment_group TEXT PRIMARY KEY,
    last_assignee TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE major_incident_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    condition TEXT NOT NULL DEFAULT '',
    min_children INTEGER NOT NULL DEFAULT 0,
    children_window_us INTEGER NOT NULL DEFAULT 0,
    action INTEGER NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_by_subject TEXT NOT NULL,
    created_by_name TEXT NOT NULL,
    created_by_kind INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);

CREATE TABLE alert_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL DEFAULT '',
    status INTEGER NOT NULL,
    severity INTEGER NOT NULL DEFAULT 0,
    node TEXT NOT NULL DEFAULT '',
    resource TEXT NOT NULL DEFAULT '',
    metric TEXT NOT NULL DEFAULT '',
    summary TEXT NOT NULL DEFAULT '',
    last_alert BLOB NOT NULL,
    occurrence_count INTEGER NOT NULL DEFAULT 0,
    flap_count INTEGER NOT NULL DEFAULT 0,
    flapping INTEGER NOT NULL DEFAULT 0,
    flap_window_started_at INTEGER NOT NULL DEFAULT 0,
    incident TEXT NOT NULL DEFAULT '',
    first_seen_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    last_resolved_at INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL
);
CREATE INDEX alert_groups_status ON alert_groups (status, last_seen_at, id);
CREATE INDEX alert_groups_seen ON alert_groups (last_seen_at, id);
CREATE INDEX alert_groups_incident ON alert_groups (incident);
