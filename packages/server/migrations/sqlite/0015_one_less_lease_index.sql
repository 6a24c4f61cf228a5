-- delivery_leased (lease_expires_at, in-flight rows only) went: every
-- statement that read it scanned it whole (returning expired leases and a
-- dead worker's is one condition over every delivery in flight; counting them
-- is a count), which delivery_leased_subscription and delivery_leased_worker
-- hold as well, while each claim and each outcome wrote it.
DROP INDEX delivery_leased;
