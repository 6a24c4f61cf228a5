-- Fewer indexes written per delivery: each one costs every create.
--
-- resource_key is now set only for the deliveries of a per-resource
-- webhook (the only ones whose claim reads it), and when a webhook switches
-- ordering on, its open deliveries get theirs then; delivery_resource_open
-- holds only keyed rows, so a create for an unordered webhook no longer
-- writes it. Deliveries keyed before keep their keys: harmless.
--
-- delivery_pending_due went: the oldest due time is the least of each
-- webhook's, which delivery_due gives by subscription, and the pending count
-- reads delivery_due (same condition) as well.
DROP INDEX delivery_pending_due;
DROP INDEX delivery_resource_open;
CREATE INDEX delivery_resource_open ON delivery (subscription_id, resource_key, id)
WHERE resource_key IS NOT NULL AND status IN ('pending', 'in_flight');
