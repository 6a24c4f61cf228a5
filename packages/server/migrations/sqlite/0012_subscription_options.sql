-- Per-webhook options: an attribute filter on the event's payload (JSON,
-- checked when an event is written), static request headers (JSON, sealed by
-- the master key like the signing key: they often carry credentials), a
-- shorter request timeout (ms) and an own retry schedule (JSON list of ms).
ALTER TABLE subscription ADD COLUMN filter TEXT;
ALTER TABLE subscription ADD COLUMN headers TEXT;
ALTER TABLE subscription ADD COLUMN timeout_ms INTEGER CHECK (timeout_ms > 0);
ALTER TABLE subscription ADD COLUMN retry_schedule TEXT;
