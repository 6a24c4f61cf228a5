-- What the dispatcher needs: attempts, tasks (recover), and indexes for claiming.

-- attempts made before the current round (a resend or recover starts a new round of the retry schedule)
ALTER TABLE delivery ADD COLUMN retries_from INTEGER NOT NULL DEFAULT 0;
CREATE INDEX delivery_pending_due ON delivery (next_attempt_at) WHERE status = 'pending';
CREATE INDEX delivery_leased ON delivery (lease_expires_at) WHERE status = 'in_flight';
CREATE INDEX delivery_leased_subscription ON delivery (subscription_id) WHERE status = 'in_flight';

CREATE TABLE attempt (
  id TEXT PRIMARY KEY,
  delivery_id TEXT NOT NULL REFERENCES delivery (id),
  n INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  request_headers TEXT NOT NULL,
  response_status INTEGER,
  response_body TEXT,
  error TEXT
);
CREATE INDEX attempt_delivery ON attempt (delivery_id, id);

CREATE TABLE task (
  id TEXT PRIMARY KEY,
  business_id TEXT NOT NULL REFERENCES business (id),
  subscription_id TEXT,
  kind TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
  params TEXT NOT NULL,
  total INTEGER NOT NULL DEFAULT 0,
  done INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  finished_at INTEGER
);
CREATE INDEX task_business ON task (business_id, id);
