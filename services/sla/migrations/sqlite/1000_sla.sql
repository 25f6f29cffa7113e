-- The SLA service's schema: business-hours calendars and SLA definitions with
-- every version kept, the ticket events the clocks are replayed from, the task
-- SLAs (one clock per ticket per matching definition) with their timelines and
-- durable deadlines, and the long-running recomputations.
--
-- Conventions (as every practice): times are microseconds since the epoch
-- (BIGINT), 0 means "never"; enums are their protobuf numbers; booleans are
-- INTEGER 0/1; `version` is the etag and the sequence of the resource's events;
-- `tenant` waits for multi-tenancy.
--
-- Resources keep their full protobuf message in `doc` (BLOB) and copy into
-- columns only what a query filters, sorts or joins on.

-- Business-hours calendars, current version. doc: Calendar (current version,
-- with its etag). A deleted calendar keeps its row (deleted = 1) so that task
-- SLAs computed with one of its versions can still be replayed.
CREATE TABLE calendars (
    -- The id of "calendars/<id>".
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL DEFAULT '',
    display_name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    -- The current version number (1 at creation, +1 on every change).
    version BIGINT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    doc BLOB NOT NULL
);
CREATE INDEX calendars_display_name ON calendars (display_name, id);

-- Every version of every calendar, immutable. doc: Calendar as of that version.
CREATE TABLE calendar_versions (
    calendar_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    -- When this version was made.
    created_at BIGINT NOT NULL,
    doc BLOB NOT NULL,
    PRIMARY KEY (calendar_id, version)
);

-- SLA / OLA / UC definitions, current version. doc: SlaDefinition (current
-- version, with its etag). Deleted ones keep their row (deleted = 1) for replay.
CREATE TABLE sla_definitions (
    -- The id of "slaDefinitions/<id>".
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL DEFAULT '',
    display_name TEXT NOT NULL,
    -- SlaKind.
    kind INTEGER NOT NULL,
    -- "incidents", "problems", "changes", "requestItems", "tasks".
    ticket_type TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    -- The calendar's id ('' for 24x7), for "which definitions use this calendar".
    calendar_id TEXT NOT NULL DEFAULT '',
    version BIGINT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    doc BLOB NOT NULL
);
CREATE INDEX sla_definitions_ticket_type ON sla_definitions (ticket_type, enabled, id);
CREATE INDEX sla_definitions_calendar ON sla_definitions (calendar_id);

-- Every version of every definition, immutable. doc: SlaDefinition as of that version.
CREATE TABLE sla_definition_versions (
    sla_definition_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    doc BLOB NOT NULL,
    PRIMARY KEY (sla_definition_id, version)
);

-- The ticket events consumed from the bus: the replay source of the clocks.
-- doc: the itsm.events.v1.Event bytes as received (payload = the ticket snapshot
-- and its changes). A redelivered event is a no-op (event_id UNIQUE); events
-- arriving out of order are replayed by sequence.
CREATE TABLE ticket_events (
    -- The ticket, "incidents/INC0000042".
    ticket TEXT NOT NULL,
    -- The per-ticket sequence (Event.sequence).
    sequence BIGINT NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    -- Event.time.
    time BIGINT NOT NULL,
    -- When this service stored it.
    received_at BIGINT NOT NULL,
    doc BLOB NOT NULL,
    PRIMARY KEY (ticket, sequence)
);

-- Task SLAs: one clock per ticket per matching definition. doc: TaskSla as of
-- its latest change (elapsed etc. as of updated_at; reads project them to now).
CREATE TABLE task_slas (
    -- Internal key: what the timeline references.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The public id: "taskSlas/<uid>".
    uid TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL DEFAULT '',
    -- "incidents/INC0000042".
    ticket TEXT NOT NULL,
    sla_definition_id TEXT NOT NULL,
    sla_definition_version BIGINT NOT NULL,
    -- '' and 0 for 24x7.
    calendar_id TEXT NOT NULL DEFAULT '',
    calendar_version BIGINT NOT NULL DEFAULT 0,
    -- TaskSlaState.
    state INTEGER NOT NULL,
    breached INTEGER NOT NULL DEFAULT 0,
    -- The durable timer: the next instant something happens to this clock on
    -- its own (the next warning percentage or the breach), 0 when none. Only
    -- IN_PROGRESS clocks have one; the worker claims due rows from the index.
    next_deadline_at BIGINT NOT NULL DEFAULT 0,
    -- The planned breach instant (TaskSla.breach_time), 0 when unset.
    breach_at BIGINT NOT NULL DEFAULT 0,
    -- When the clock stopped or was canceled, 0 while open.
    stop_at BIGINT NOT NULL DEFAULT 0,
    start_at BIGINT NOT NULL DEFAULT 0,
    assignment_group TEXT NOT NULL DEFAULT '',
    -- itsm.common.v1.Priority.
    priority INTEGER NOT NULL DEFAULT 0,
    -- Business service "cis/<uuid>", '' when none.
    service TEXT NOT NULL DEFAULT '',
    -- SlaKind (copied from the definition).
    kind INTEGER NOT NULL,
    -- The latest ticket event applied (TaskSla.ticket_sequence).
    ticket_sequence BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    doc BLOB NOT NULL
);
-- The clocks of a ticket (one per definition at a time; a canceled one may be
-- followed by a new one when the ticket matches again).
CREATE INDEX task_slas_ticket ON task_slas (ticket, sla_definition_id);
-- Due timers (state 1 = IN_PROGRESS).
CREATE INDEX task_slas_deadline ON task_slas (next_deadline_at) WHERE state = 1;
CREATE INDEX task_slas_definition ON task_slas (sla_definition_id, state);
CREATE INDEX task_slas_calendar ON task_slas (calendar_id, state);
CREATE INDEX task_slas_created ON task_slas (created_at, id);
CREATE INDEX task_slas_breach ON task_slas (breached, breach_at, id);
CREATE INDEX task_slas_stop ON task_slas (stop_at, id);

-- The timeline of a task SLA, oldest first. doc: TimelineEntry.
CREATE TABLE task_sla_timeline (
    task_sla_id BIGINT NOT NULL REFERENCES task_slas (id),
    -- 1, 2, ... within the task SLA.
    seq BIGINT NOT NULL,
    -- TimelineEntry.time.
    time BIGINT NOT NULL,
    doc BLOB NOT NULL,
    PRIMARY KEY (task_sla_id, seq)
);

-- Long-running operations (recomputations). doc: Operation with its progress.
CREATE TABLE operations (
    -- The public id: "operations/<uid>".
    uid TEXT PRIMARY KEY,
    tenant TEXT NOT NULL DEFAULT '',
    -- OperationKind, OperationState.
    kind INTEGER NOT NULL,
    state INTEGER NOT NULL,
    -- Set by CancelOperation; the worker stops at its next batch.
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    -- Keyset cursor of the worker: the last task_slas.id processed.
    cursor BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    doc BLOB NOT NULL
);
CREATE INDEX operations_created ON operations (created_at, uid);
CREATE INDEX operations_state ON operations (state, created_at);
