-- Push delivery of SCIM events (RFC 8935): one row per event and receiver, retried with
-- backoff until the receiver accepts the SET (202) or refuses it (400), or attempts run out.
CREATE TABLE event_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_seq INTEGER NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
    receiver TEXT NOT NULL,
    -- pending, delivered or failed
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    -- Unix milliseconds of the next attempt
    next_at INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT
);
CREATE INDEX event_deliveries_due ON event_deliveries(state, next_at);
CREATE INDEX event_deliveries_event ON event_deliveries(event_seq);
