/**
 * SQLite's outbox write: the records, events and deliveries of one or more
 * creates as statements of the caller's transaction, each table's rows in a
 * few multi-row INSERTs and every delivery in one more, so several creates
 * cost about as many statements as one (store/outbox-batch.ts gathers them).
 */
import type { Db } from "./open.js";
import type { Outgoing } from "./outbox.js";
import { deliveryRows, type NewCreate, withSubscribers } from "./outbox-rows.js";
import { insertRows } from "./prepared.js";
import { rowsOf } from "./queue/raw.js";
import { SUBSCRIPTION_BY_ID } from "./sqlite-keys.js";

/** SQLite's default limit on the values one statement binds (SQLITE_MAX_VARIABLE_NUMBER). */
const MAX_VALUES = 32_766;

/**
 * One pending delivery per element of @deliveries (outbox-rows.ts's
 * DeliveryRow) whose subscription is still live in the database and the
 * event's business's, whatever the caller's (cached) list says: a webhook
 * deleted or disabled by another connection (the breaker) gets none. Only a
 * per-resource webhook's delivery names its resource (resourceKeyOf): no
 * other claim reads it, and an unkeyed delivery skips that index.
 * PostgreSQL's statements (outbox-statement.ts) check the same. The list
 * drives the loop whatever the planner's statistics say (queue/held.ts).
 */
const DELIVERIES = `
INSERT INTO delivery (id, event_id, subscription_id, business_id, event_name, status, attempts, next_attempt_at,
  created_at, updated_at, resource_key)
SELECT j.value ->> 'id', j.value ->> 'event_id', s.id, s.business_id, j.value ->> 'event_name', 'pending', 0,
  j.value ->> 'at', j.value ->> 'at', j.value ->> 'at',
  CASE WHEN s.ordering = 'per_resource' THEN j.value ->> 'resource_key' END
FROM json_each(@deliveries) AS j
CROSS JOIN subscription AS s INDEXED BY ${SUBSCRIPTION_BY_ID} ON s.id = j.value ->> 'subscription_id'
WHERE s.business_id = j.value ->> 'business_id' AND s.deleted_at IS NULL AND s.state <> 'disabled'
RETURNING event_id`;

/**
 * Inserts rows of one shape in chunks of powers of two, each within SQLite's
 * limit on bound values: insertRows compiles a statement per row count, so
 * batches of any size up to CAREHOOKS_CREATE_BATCH need a handful of them
 * per table, not one per size.
 */
async function insertAll(db: Db, table: Parameters<typeof insertRows>[1], rows: readonly object[]): Promise<void> {
  const first = rows[0];
  if (first === undefined) return;
  let largest = 1;
  const columns = Math.max(1, Object.keys(first).length);
  while (largest * 2 * columns <= MAX_VALUES) largest *= 2;
  let start = 0;
  while (start < rows.length) {
    let size = largest;
    while (size > rows.length - start) size /= 2;
    await insertRows(db, table, rows.slice(start, start + size) as never);
    start += size;
  }
}

/**
 * Writes the creates in `db`, which must be a transaction: their records
 * (the same tables in the same order for each, as the batcher groups them),
 * events and deliveries, to the subscriptions each names or looks up here.
 * Returns how many deliveries each event got, by id.
 */
export async function writeCreates(db: Db, creates: readonly NewCreate[]): Promise<Map<string, number>> {
  const outgoings: Outgoing[] = [];
  for (const create of creates) outgoings.push(await withSubscribers(db, create));
  const counts = new Map(outgoings.map(({ event }) => [event.id, 0]));
  const first = outgoings[0];
  if (first === undefined) return counts;
  const tables = first.records.map((record) => record.table);
  for (const { records } of outgoings) {
    if (records.length !== tables.length || records.some((record, i) => record.table !== tables[i])) {
      throw new Error("creates written together must insert the same tables");
    }
  }
  for (const [i, table] of tables.entries()) {
    await insertAll(
      db,
      table,
      outgoings.map(({ records }) => (records[i] as Outgoing["records"][number]).row),
    );
  }
  await insertAll(
    db,
    "event",
    outgoings.map(({ event }) => event),
  );
  const deliveries = deliveryRows(outgoings);
  if (deliveries.length === 0) return counts;
  for (const { event_id } of await rowsOf<{ event_id: string }>(db, DELIVERIES, {
    deliveries: JSON.stringify(deliveries),
  })) {
    counts.set(event_id, (counts.get(event_id) ?? 0) + 1);
  }
  return counts;
}
