-- Data path v2: workers register and beat, leases name their worker, and each
-- subscription counts its deliveries in flight.

-- One row per running dispatcher; a row not beaten for CAREHOOKS_WORKER_TIMEOUT belongs to a dead process.
CREATE TABLE worker (
  id TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  started_at BIGINT NOT NULL,
  heartbeat_at BIGINT NOT NULL
);

-- The worker holding an in-flight delivery's lease.
ALTER TABLE delivery ADD COLUMN worker_id TEXT;
CREATE INDEX delivery_leased_worker ON delivery (worker_id) WHERE status = 'in_flight';

-- Deliveries in flight per subscription, kept by the triggers below whatever
-- statement moves or removes a delivery (deliveries are inserted pending). The claim locks the subscription rows it takes
-- work from (FOR NO KEY UPDATE SKIP LOCKED) and reads this count from the row
-- it locked, the latest committed version: two workers claiming at once cannot
-- both fill the same slots, which a count over `delivery` in the claim's
-- snapshot could not promise.
ALTER TABLE subscription ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0;
UPDATE subscription s SET in_flight = c.n
FROM (SELECT subscription_id, count(*) AS n FROM delivery WHERE status = 'in_flight' GROUP BY subscription_id) c
WHERE s.id = c.subscription_id;

-- Only rows whose status moved into or out of in_flight count: an update that
-- leaves the status alone (a lease kept longer) locks no subscription.
-- `SET search_path FROM CURRENT`: the schema carehooks was migrated into,
-- whatever the search path of the statement that fires the trigger.
CREATE FUNCTION delivery_count_in_flight() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  -- Locked in id order first: two statements changing the same subscriptions never deadlock.
  PERFORM 1 FROM subscription WHERE id IN (
    SELECT n.subscription_id FROM changed_new n JOIN changed_old o ON o.id = n.id
    WHERE (n.status = 'in_flight') <> (o.status = 'in_flight')
  ) ORDER BY id FOR NO KEY UPDATE;
  UPDATE subscription s SET in_flight = s.in_flight + c.delta
  FROM (
    SELECT n.subscription_id, sum(CASE WHEN n.status = 'in_flight' THEN 1 ELSE -1 END) AS delta
    FROM changed_new n JOIN changed_old o ON o.id = n.id
    WHERE (n.status = 'in_flight') <> (o.status = 'in_flight')
    GROUP BY n.subscription_id
  ) c
  WHERE s.id = c.subscription_id AND c.delta <> 0;
  RETURN NULL;
END $$;

CREATE FUNCTION delivery_count_removed() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  UPDATE subscription s SET in_flight = s.in_flight - c.n
  FROM (SELECT subscription_id, count(*) AS n FROM changed_old WHERE status = 'in_flight' GROUP BY subscription_id) c
  WHERE s.id = c.subscription_id;
  RETURN NULL;
END $$;

CREATE TRIGGER delivery_in_flight_update AFTER UPDATE ON delivery
  REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION delivery_count_in_flight();
CREATE TRIGGER delivery_in_flight_delete AFTER DELETE ON delivery
  REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION delivery_count_removed();
