-- Nothing to change here: SQLite counts a webhook's deliveries in flight when
-- it claims, and keeps no count for a trigger to lock. (PostgreSQL's 0017
-- skips its trigger's ordered lock beforehand when a statement updated one
-- subscription's deliveries only.)
SELECT 1;
