-- Data path v2: workers register and beat, leases name their worker.

-- One row per running dispatcher; a row not beaten for CAREHOOKS_WORKER_TIMEOUT belongs to a dead process.
CREATE TABLE worker (
  id TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL
);

-- The worker holding an in-flight delivery's lease.
ALTER TABLE delivery ADD COLUMN worker_id TEXT;
CREATE INDEX delivery_leased_worker ON delivery (worker_id) WHERE status = 'in_flight';
