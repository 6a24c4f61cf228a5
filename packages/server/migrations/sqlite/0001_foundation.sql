-- Businesses, their API clients and tokens, and webhook subscriptions.
-- Times are Unix milliseconds (INTEGER), the same in both dialects.

CREATE TABLE setting (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE business (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);

CREATE TABLE api_client (
  id TEXT PRIMARY KEY,
  business_id TEXT NOT NULL REFERENCES business (id),
  name TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  scopes TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX api_client_business ON api_client (business_id, id);

CREATE TABLE refresh_token (
  token_hash TEXT PRIMARY KEY,
  client_id TEXT NOT NULL REFERENCES api_client (id),
  family_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER,
  revoked_at INTEGER
);
CREATE INDEX refresh_token_family ON refresh_token (family_id);
CREATE INDEX refresh_token_expiry ON refresh_token (expires_at);

CREATE TABLE subscription (
  id TEXT PRIMARY KEY,
  business_id TEXT NOT NULL REFERENCES business (id),
  endpoint TEXT NOT NULL,
  endpoint_key TEXT NOT NULL,
  event_names TEXT NOT NULL,
  protocol TEXT NOT NULL,
  signing_key TEXT,
  previous_signing_key TEXT,
  previous_key_expires_at INTEGER,
  state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'degraded', 'disabled')),
  state_reason TEXT,
  state_changed_at INTEGER NOT NULL,
  failure_streak INTEGER NOT NULL DEFAULT 0,
  failing_since INTEGER,
  probe_at INTEGER,
  client_id TEXT NOT NULL,
  created_by TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deleted_at INTEGER
);
CREATE INDEX subscription_business ON subscription (business_id, id);
CREATE UNIQUE INDEX subscription_endpoint ON subscription (business_id, endpoint_key) WHERE deleted_at IS NULL;
