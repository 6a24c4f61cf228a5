-- Endpoint affinity: while a subscription has deliveries in flight, one
-- worker (its `sender`) sends them all. That worker keeps the endpoint's cap
-- in memory and may lease deliveries ahead of its free slots, sending them
-- as responses end, with no claim in between; other workers leave the
-- subscription alone until nothing of it is in flight or its sender's worker
-- row is gone (dead and forgotten, or stopped).
ALTER TABLE subscription ADD COLUMN sender TEXT;

-- As in 0005, plus: the worker that leased a subscription's deliveries last
-- becomes its sender, and a subscription with nothing in flight has none.
CREATE OR REPLACE FUNCTION delivery_count_in_flight() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  -- Locked in id order first: two statements changing the same subscriptions never deadlock.
  PERFORM 1 FROM subscription WHERE id IN (
    SELECT n.subscription_id FROM changed_new n JOIN changed_old o ON o.id = n.id
    WHERE (n.status = 'in_flight') <> (o.status = 'in_flight')
  ) ORDER BY id FOR NO KEY UPDATE;
  UPDATE subscription s SET
    in_flight = s.in_flight + c.delta,
    sender = CASE WHEN s.in_flight + c.delta <= 0 THEN NULL ELSE coalesce(c.worker, s.sender) END
  FROM (
    SELECT n.subscription_id,
      sum(CASE WHEN n.status = 'in_flight' THEN 1 ELSE -1 END) AS delta,
      max(n.worker_id) FILTER (WHERE n.status = 'in_flight') AS worker
    FROM changed_new n JOIN changed_old o ON o.id = n.id
    WHERE (n.status = 'in_flight') <> (o.status = 'in_flight')
    GROUP BY n.subscription_id
  ) c
  WHERE s.id = c.subscription_id;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION delivery_count_removed() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  UPDATE subscription s SET
    in_flight = s.in_flight - c.n,
    sender = CASE WHEN s.in_flight - c.n <= 0 THEN NULL ELSE s.sender END
  FROM (SELECT subscription_id, count(*) AS n FROM changed_old WHERE status = 'in_flight' GROUP BY subscription_id) c
  WHERE s.id = c.subscription_id;
  RETURN NULL;
END $$;

-- Subscriptions in flight now: their sender is the worker holding their leases.
UPDATE subscription s SET sender = d.worker_id
FROM (SELECT DISTINCT ON (subscription_id) subscription_id, worker_id FROM delivery WHERE status = 'in_flight') d
WHERE s.id = d.subscription_id;
