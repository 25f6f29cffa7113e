-- Assignment groups and their members. A group's public id is the slug its
-- creator chose ("network" in "groups/network"); `id` is only the keyset
-- tie-breaker of list pages. Times are microseconds since the epoch; every
-- column a list filter can name is NOT NULL ('' when unset).
CREATE TABLE groups (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL,
    email TEXT NOT NULL,
    -- A subject, or '' when the group has no manager.
    manager TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- The etag: incremented by every change, membership changes included.
    version BIGINT NOT NULL
);
-- The sortable list fields, each with the id tie-breaker of keyset pages.
CREATE INDEX groups_created ON groups (created_at, id);
CREATE INDEX groups_display_name ON groups (display_name, id);
CREATE INDEX groups_manager ON groups (manager);

-- One row per membership, so "is X a member of G" and "which groups is X in"
-- are index lookups, not scans of a list column. Members change only while
-- their group's row is locked (see api/group.rs); a group is deleted with
-- its members in one transaction, and the foreign key refuses orphans.
CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (group_id),
    member TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, member)
);
-- ListGroups(member = ...): the groups of one subject.
CREATE INDEX group_members_member ON group_members (member);
