-- Per-webhook delivery settings: per-resource ordering, a lower in-flight cap
-- and a rate limit. Each delivery names its resource, so an ordered webhook's
-- claim can tell whether an earlier delivery of the same resource is still
-- open (pending or in flight) and hold the later one back until it is not.
ALTER TABLE subscription ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none' CHECK (ordering IN ('none', 'per_resource'));
ALTER TABLE subscription ADD COLUMN max_in_flight INTEGER CHECK (max_in_flight > 0);
ALTER TABLE subscription ADD COLUMN rate_limit INTEGER CHECK (rate_limit > 0);

ALTER TABLE delivery ADD COLUMN resource_key TEXT;
UPDATE delivery SET resource_key = (SELECT e.resource_type || ':' || e.resource_id FROM event e WHERE e.id = delivery.event_id)
WHERE status IN ('pending', 'in_flight');
CREATE INDEX delivery_resource_open ON delivery (subscription_id, resource_key, id) WHERE status IN ('pending', 'in_flight');
