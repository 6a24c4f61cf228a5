-- As in 0010, but the subscriptions are locked in id order beforehand only
-- when the statement updated deliveries of more than one (a superset of those
-- whose in-flight state it changed). That lock is there so two statements
-- changing the same subscriptions never deadlock, which takes two rows each;
-- a statement with one subscription's deliveries (a claim or an outcome write
-- while one endpoint is busy) locks its one row in the UPDATE alone, as the
-- lock beforehand did. That separate locking statement was about a quarter of
-- PostgreSQL's CPU in a backlog drain (0.26 against 0.19 ms a delivery, the
-- medians of eight alternating pairs of drains).
CREATE OR REPLACE FUNCTION delivery_count_in_flight() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  -- Stops at the second subscription it finds.
  IF EXISTS (
    SELECT 1 FROM changed_new n WHERE n.subscription_id <> (SELECT f.subscription_id FROM changed_new f LIMIT 1)
  ) THEN
    PERFORM 1 FROM subscription WHERE id IN (
      SELECT n.subscription_id FROM changed_new n JOIN changed_old o ON o.id = n.id
      WHERE (n.status = 'in_flight') <> (o.status = 'in_flight')
    ) ORDER BY id FOR NO KEY UPDATE;
  END IF;
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
