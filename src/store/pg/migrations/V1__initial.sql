-- scimlab's tables on PostgreSQL: the SQLite schema (src/store/migrations) in one step, with
-- documents as jsonb. Per-server expression indexes come from the index plan at run time.

CREATE TABLE resources (
    seq           BIGSERIAL PRIMARY KEY,
    server_id     TEXT   NOT NULL,
    resource_type TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    created       TEXT   NOT NULL,
    last_modified TEXT   NOT NULL,
    doc           JSONB  NOT NULL
);
CREATE UNIQUE INDEX resources_by_id ON resources (server_id, id);
CREATE INDEX resources_by_type ON resources (server_id, resource_type, seq);

CREATE TABLE memberships (
    seq         BIGSERIAL PRIMARY KEY,
    server_id   TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    member_type TEXT,
    display     TEXT
);
CREATE UNIQUE INDEX memberships_by_group ON memberships (server_id, group_id, member_id);
CREATE INDEX memberships_by_member ON memberships (server_id, member_id);

-- Kept by triggers in the writing transaction: an unfiltered list's totalResults is a lookup.
CREATE TABLE resource_counts (
    server_id     TEXT   NOT NULL,
    resource_type TEXT   NOT NULL,
    n             BIGINT NOT NULL,
    PRIMARY KEY (server_id, resource_type)
);

CREATE FUNCTION resources_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO resource_counts (server_id, resource_type, n)
            VALUES (NEW.server_id, NEW.resource_type, 1)
            ON CONFLICT (server_id, resource_type) DO UPDATE SET n = resource_counts.n + 1;
        RETURN NEW;
    END IF;
    UPDATE resource_counts SET n = n - 1
        WHERE server_id = OLD.server_id AND resource_type = OLD.resource_type;
    RETURN OLD;
END $$;
CREATE TRIGGER resources_count_insert AFTER INSERT ON resources
    FOR EACH ROW EXECUTE FUNCTION resources_count();
CREATE TRIGGER resources_count_delete AFTER DELETE ON resources
    FOR EACH ROW EXECUTE FUNCTION resources_count();

-- The request inspector's log. Sequence numbers come from the recording process: time-ordered
-- and distinct per replica (see harness::inspector).
CREATE TABLE request_log (
    seq        BIGINT PRIMARY KEY,
    server_id  TEXT   NOT NULL,
    at         TEXT   NOT NULL,
    method     TEXT   NOT NULL,
    path       TEXT   NOT NULL,
    status     BIGINT NOT NULL,
    entry      TEXT   NOT NULL
);
CREATE INDEX request_log_by_server ON request_log (server_id, seq);

CREATE TABLE snapshots (
    server_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    taken      TEXT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (server_id, name)
);

CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE events (
    seq     BIGSERIAL PRIMARY KEY,
    server_id TEXT NOT NULL,
    jti     TEXT NOT NULL,
    created TEXT NOT NULL,
    claims  TEXT NOT NULL,
    state   TEXT NOT NULL DEFAULT 'pending',
    error   TEXT
);
CREATE UNIQUE INDEX events_jti ON events (server_id, jti);
CREATE INDEX events_pending ON events (server_id, state, seq);

CREATE TABLE event_deliveries (
    id          BIGSERIAL PRIMARY KEY,
    event_seq   BIGINT NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    receiver    TEXT   NOT NULL,
    state       TEXT   NOT NULL DEFAULT 'pending',
    attempts    BIGINT NOT NULL DEFAULT 0,
    next_at     BIGINT NOT NULL,
    last_status BIGINT,
    last_error  TEXT
);
CREATE INDEX event_deliveries_due ON event_deliveries (state, next_at);
CREATE INDEX event_deliveries_event ON event_deliveries (event_seq);

CREATE TABLE oauth_grants (
    server_id  TEXT   NOT NULL,
    digest     TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    detail     TEXT,
    PRIMARY KEY (server_id, digest)
);
CREATE INDEX oauth_grants_expiry ON oauth_grants (expires_at);

-- Servers created through the admin API: every replica serves them.
CREATE TABLE ephemeral_servers (
    id         TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    created    TEXT NOT NULL
);

-- Each process takes a number when it opens the database (the request log's numbering).
CREATE SEQUENCE replica_numbers;

-- Rate-limit token buckets, shared by the replicas: a limit holds for the endpoint, not per
-- process. `at` is the database's clock (seconds), so replicas' clocks never disagree.
CREATE TABLE rate_buckets (
    server_id TEXT   NOT NULL,
    key       TEXT   NOT NULL,
    capacity  FLOAT8 NOT NULL,
    per_sec   FLOAT8 NOT NULL,
    tokens    FLOAT8 NOT NULL,
    at        FLOAT8 NOT NULL,
    PRIMARY KEY (server_id, key)
);

-- Faults and rate limits set through the admin API (kind `faults` or `rate-limits`, the JSON
-- the API took): every replica applies them.
CREATE TABLE admin_overrides (
    server_id TEXT NOT NULL,
    kind      TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (server_id, kind)
);
