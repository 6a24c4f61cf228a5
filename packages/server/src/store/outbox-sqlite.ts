/**
 * SQLite's outbox write: the records, events and deliveries of one or more
 * creates as statements of the caller's transaction, each table's rows in one
 * INSERT and every delivery in one more, so several creates cost about as
 * many statements as one (store/outbox-batch.ts gathers them).
 */
import { newId } from "../domain/ids.js";
import type { Db } from "./open.js";
import type { Outgoing } from "./outbox.js";
import { insertRows } from "./prepared.js";
import { rowsOf } from "./queue/raw.js";
import { resourceKeyOf } from "./resource-key.js";
import { SUBSCRIPTION_BY_ID } from "./sqlite-keys.js";

/** SQLite's default limit on the values one statement binds (SQLITE_MAX_VARIABLE_NUMBER). */
const MAX_VALUES = 32_766;

/**
 * One pending delivery per element of @deliveries, `[id, subscription id,
 * event id, event name, at, resource, business id]`, whose subscription is
 * still live in the database and the event's business's, whatever the
 * caller's (cached) list says: a webhook deleted or disabled by another
 * connection (the breaker) gets none. Only a per-resource webhook's delivery
 * names its resource (resourceKeyOf): no other claim reads it, and an unkeyed
 * delivery skips that index. PostgreSQL's statements (outbox-statement.ts)
 * check the same. The list drives the loop whatever the planner's statistics
 * say (queue/held.ts).
 */
const DELIVERIES = `
INSERT INTO delivery (id, event_id, subscription_id, business_id, event_name, status, attempts, next_attempt_at,
  created_at, updated_at, resource_key)
SELECT j.value ->> 0, j.value ->> 2, s.id, s.business_id, j.value ->> 3, 'pending', 0, j.value ->> 4,
  j.value ->> 4, j.value ->> 4, CASE WHEN s.ordering = 'per_resource' THEN j.value ->> 5 END
FROM json_each(@deliveries) AS j CROSS JOIN subscription AS s INDEXED BY ${SUBSCRIPTION_BY_ID} ON s.id = j.value ->> 1
WHERE s.business_id = j.value ->> 6 AND s.deleted_at IS NULL AND s.state <> 'disabled'
RETURNING event_id`;

/** Inserts rows of one shape, as few statements as SQLite's limit on bound values allows. */
async function insertAll(db: Db, table: Parameters<typeof insertRows>[1], rows: readonly object[]): Promise<void> {
  const first = rows[0];
  if (first === undefined) return;
  const perStatement = Math.max(1, Math.floor(MAX_VALUES / Object.keys(first).length));
  for (let start = 0; start < rows.length; start += perStatement) {
    await insertRows(db, table, rows.slice(start, start + perStatement) as never);
  }
}

/**
 * Writes the creates in `db`, which must be a transaction: their records
 * (the same tables in the same order for each, as the batcher groups them),
 * events and deliveries. Returns how many deliveries each event got, by id.
 */
export async function writeCreates(db: Db, outgoings: readonly Outgoing[]): Promise<Map<string, number>> {
  const first = outgoings[0];
  const counts = new Map<string, number>();
  if (first === undefined) return counts;
  for (let i = 0; i < first.records.length; i++) {
    const table = (first.records[i] as Outgoing["records"][number]).table;
    const rows = outgoings.map(({ records }) => {
      const record = records[i];
      if (record?.table !== table) throw new Error("creates written together must insert the same tables");
      return record.row;
    });
    await insertAll(db, table, rows);
  }
  await insertAll(
    db,
    "event",
    outgoings.map(({ event }) => event),
  );
  const deliveries: unknown[][] = [];
  for (const { event, subscriptionIds } of outgoings) {
    counts.set(event.id, 0);
    const resource = resourceKeyOf(event);
    for (const subscriptionId of subscriptionIds) {
      deliveries.push([
        newId("delivery", event.created_at),
        subscriptionId,
        event.id,
        event.name,
        event.created_at,
        resource,
        event.business_id,
      ]);
    }
  }
  if (deliveries.length === 0) return counts;
  for (const { event_id } of await rowsOf<{ event_id: string }>(db, DELIVERIES, {
    deliveries: JSON.stringify(deliveries),
  })) {
    counts.set(event_id, (counts.get(event_id) ?? 0) + 1);
  }
  return counts;
}
