-- OAuth 2.0 (RFC 6749) grants a server issued: authorization codes, pending consents, access
-- and refresh tokens. Only a SHA-256 digest of each is kept, so the database holds no usable
-- credential; every process on the database honours them.
CREATE TABLE oauth_grants (
    server_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    -- consent, code, access or refresh
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL,
    -- Unix seconds
    expires_at INTEGER NOT NULL,
    -- a code's or consent's redirect URI and state (JSON)
    detail TEXT,
    PRIMARY KEY (server_id, digest)
);
CREATE INDEX oauth_grants_expiry ON oauth_grants(expires_at);
