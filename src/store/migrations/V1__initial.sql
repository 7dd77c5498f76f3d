-- scimlab's own tables. Per-server indexes derived from definitions are created at run time
-- (see store/plan.rs), not here.

-- Every resource of every virtual server, stored whole as JSON with canonical attribute names.
-- `seq` is the insertion order: list paging walks it, so pages never repeat or skip.
CREATE TABLE resources (
    seq           INTEGER PRIMARY KEY,
    server_id     TEXT    NOT NULL,
    resource_type TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    created       TEXT    NOT NULL,
    last_modified TEXT    NOT NULL,
    doc           TEXT    NOT NULL
);
CREATE UNIQUE INDEX resources_by_id ON resources (server_id, id);
CREATE INDEX resources_by_type ON resources (server_id, resource_type, seq);

-- Group membership, one row per member, so large groups change one row at a time and
-- User.groups is an index lookup.
CREATE TABLE memberships (
    seq         INTEGER PRIMARY KEY,
    server_id   TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    member_type TEXT,
    display     TEXT
);
CREATE UNIQUE INDEX memberships_by_group ON memberships (server_id, group_id, member_id);
CREATE INDEX memberships_by_member ON memberships (server_id, member_id);
