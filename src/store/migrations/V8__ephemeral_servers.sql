-- Servers created through the admin API, kept where every process on the database finds them
-- (used where replicas share a database; a single SQLite process keeps them in memory).
CREATE TABLE ephemeral_servers (
    id         TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    created    TEXT NOT NULL
);

-- Faults and rate limits set through the admin API (kind `faults` or `rate-limits`, the JSON
-- the API took), where replicas share a database: every replica applies them.
CREATE TABLE admin_overrides (
    server_id TEXT NOT NULL,
    kind      TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (server_id, kind)
);
