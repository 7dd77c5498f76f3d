-- Servers created through the admin API, kept where every process on the database finds them
-- (used where replicas share a database; a single SQLite process keeps them in memory).
CREATE TABLE ephemeral_servers (
    id         TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    created    TEXT NOT NULL
);
