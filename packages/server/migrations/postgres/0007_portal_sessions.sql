-- Portal sessions: single-use links that open the dashboard signed in for one
-- business without a secret. Only a hash of the link's token is kept; the
-- link is spent by setting used_at in the same statement that checks it.
CREATE TABLE portal_session (
  id TEXT PRIMARY KEY,
  business_id TEXT NOT NULL REFERENCES business (id),
  client_id TEXT NOT NULL REFERENCES api_client (id),
  token_hash TEXT NOT NULL UNIQUE,
  read_only INTEGER NOT NULL,
  -- JSON object of the branding this session overrides; null keeps the configured one.
  branding TEXT,
  expires_at BIGINT NOT NULL,
  used_at BIGINT,
  created_at BIGINT NOT NULL
);
CREATE INDEX portal_session_expiry ON portal_session (expires_at);
