-- Same tables as migrations/postgres/1001_groups.sql, in SQLite's dialect.
CREATE TABLE groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL,
    email TEXT NOT NULL,
    manager TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX groups_created ON groups (created_at, id);
CREATE INDEX groups_display_name ON groups (display_name, id);
CREATE INDEX groups_manager ON groups (manager);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (group_id),
    member TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, member)
);
CREATE INDEX group_members_member ON group_members (member);
