/**
 * The transactional outbox: the change's own rows, an event row and one
 * pending delivery per live subscription of the business that asked for the
 * event, written together. A failure leaves none of them; a commit leaves
 * all of them.
 */
import type { InsertObject } from "kysely";
import { newId } from "../domain/ids.js";
import type { DialectAdapter } from "./dialect/adapter.js";
import type { Db } from "./open.js";
import { batchesCreates, outboxBatcherOf } from "./outbox-batch.js";
import { writeInOneStatement } from "./outbox-statement.js";
import { insertRows } from "./prepared.js";
import { changedBy } from "./queue/raw.js";
import { resourceKeyOf } from "./resource-key.js";
import type { Database, EventTable } from "./schema.js";
import { SUBSCRIPTION_BY_ID } from "./sqlite-keys.js";

export type NewEvent = EventTable;

/** A row the change itself inserts (an appointment; a prescription and its first version). */
export type RecordInsert = {
  [T in keyof Database & string]: { readonly table: T; readonly row: InsertObject<Database, T> };
}[keyof Database & string];

export interface Outgoing {
  /** Inserted first, in this order. */
  readonly records: readonly RecordInsert[];
  readonly event: NewEvent;
  /** The live subscriptions that asked for the event (`subscribersOf`); deleted or disabled ones get nothing. */
  readonly subscriptionIds: readonly string[];
}

/**
 * Writes the records, the event and its deliveries; returns how many
 * deliveries were created. On PostgreSQL one statement, atomic by itself
 * (`db` need not be a transaction; outside one, the statement is shared
 * with the other creates of this turn, outbox-batch.ts, unless
 * CAREHOOKS_CREATE_BATCH is 1); on SQLite
 * statements of the caller's transaction, which `db` must be.
 */
export async function recordEvent(adapter: DialectAdapter, db: Db, outgoing: Outgoing): Promise<number> {
  if (adapter.writableCtes) {
    // Outside a transaction, with the other creates of this turn (outbox-batch.ts), unless batches are of one.
    return !db.isTransaction && batchesCreates(adapter)
      ? outboxBatcherOf(adapter).write(outgoing)
      : writeInOneStatement(adapter, db, outgoing);
  }
  for (const { table, row } of outgoing.records) await insertRows(db, table, [row] as never);
  await insertRows(db, "event", [outgoing.event]);
  const { event, subscriptionIds } = outgoing;
  if (subscriptionIds.length === 0) return 0;
  const ids = subscriptionIds.map((subscriptionId) => [newId("delivery", event.created_at), subscriptionId]);
  return changedBy(db, SQLITE_DELIVERIES, {
    event: event.id,
    business: event.business_id,
    name: event.name,
    at: event.created_at,
    resource: resourceKeyOf(event),
    ids: JSON.stringify(ids),
  });
}

/**
 * SQLite: one pending delivery per `[delivery id, subscription id]` of @ids
 * whose subscription is still live in the database and the event's
 * business's, whatever the caller's (cached) list says: a webhook deleted or
 * disabled by another connection (the breaker) gets none. Only a
 * per-resource webhook's delivery names its resource (resourceKeyOf): no
 * other claim reads it, and an unkeyed delivery skips that index.
 * PostgreSQL's statements (outbox-statement.ts; outbox-batch.ts for several
 * creates) check the same. The list drives the loop whatever the planner's
 * statistics say (queue/held.ts).
 */
const SQLITE_DELIVERIES = `
INSERT INTO delivery (id, event_id, subscription_id, business_id, event_name, status, attempts, next_attempt_at,
  created_at, updated_at, resource_key)
SELECT j.value ->> 0, @event, s.id, s.business_id, @name, 'pending', 0, @at, @at, @at,
  CASE WHEN s.ordering = 'per_resource' THEN @resource END
FROM json_each(@ids) AS j CROSS JOIN subscription AS s INDEXED BY ${SUBSCRIPTION_BY_ID} ON s.id = j.value ->> 1
WHERE s.business_id = @business AND s.deleted_at IS NULL AND s.state <> 'disabled'`;
