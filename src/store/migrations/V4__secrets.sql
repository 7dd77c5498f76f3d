-- Secrets the server keeps across restarts and shares between processes on one database:
-- the key that signs RFC 9865 cursors.
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
