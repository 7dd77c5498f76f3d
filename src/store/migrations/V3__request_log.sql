-- The request inspector: every request to a virtual server with its response, kept per server
-- as a bounded ring (the recorder trims the oldest rows). `entry` holds the JSON record
-- (headers, bodies, quirks, error, injected fault); the columns are what the filters use.
CREATE TABLE request_log (
    seq        INTEGER PRIMARY KEY,
    server_id  TEXT    NOT NULL,
    at         TEXT    NOT NULL,
    method     TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    status     INTEGER NOT NULL,
    entry      TEXT    NOT NULL
);
CREATE INDEX request_log_by_server ON request_log (server_id, seq);

-- Named snapshots of a server's data (the export format), taken and restored through /admin.
CREATE TABLE snapshots (
    server_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    taken      TEXT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (server_id, name)
);
