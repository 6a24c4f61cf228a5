/**
 * SQLite's own names for the indexes of primary keys (each table's first
 * constraint, migration 0002), for statements that pin their plans with
 * INDEXED BY whatever the planner's statistics say (store/queue/held.ts says
 * why; test/sqlite-plans.test.ts checks the names and the plans).
 */
export const DELIVERY_BY_ID = "sqlite_autoindex_delivery_1";
export const EVENT_BY_ID = "sqlite_autoindex_event_1";
export const SUBSCRIPTION_BY_ID = "sqlite_autoindex_subscription_1";
