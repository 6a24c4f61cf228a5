-- Nothing to change here: SQLite counts a webhook's deliveries in flight
-- when it claims, and keeps no count to lock. (PostgreSQL's 0017 takes the
-- lock its in-flight count's trigger needs only once per subscription.)
SELECT 1;
