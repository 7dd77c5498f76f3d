-- SCIM events (RFC 9967): every change's Security Event Token claims, written in the
-- change's own transaction (an outbox), until a receiver acknowledges them (RFC 8936).
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    created TEXT NOT NULL,
    claims TEXT NOT NULL,
    -- pending, acknowledged, or failed (a receiver's setErrs)
    state TEXT NOT NULL DEFAULT 'pending',
    error TEXT
);
CREATE UNIQUE INDEX events_jti ON events(server_id, jti);
CREATE INDEX events_pending ON events(server_id, state, seq);
