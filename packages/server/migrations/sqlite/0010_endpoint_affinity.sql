-- Endpoint affinity needs nothing here: under `serve`, which holds the
-- database alone, one dispatcher sends every subscription's deliveries.
-- (PostgreSQL's 0010 gives each subscription in flight one sending worker.)
SELECT 1;
