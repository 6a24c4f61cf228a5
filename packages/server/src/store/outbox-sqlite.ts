/**
 * SQLite's outbox write: the records, events and deliveries of one or more
 * creates as statements of the caller's transaction, each table's rows in a
 * few multi-row INSERTs and their deliveries in a few more, so several creates
 * cost about as many statements as one (store/outbox-batch.ts gathers them).
 */
import { CompiledQuery } from "kysely";
import type { SqlStatements } from "./dialect/adapter.js";
import type { Db } from "./open.js";
import type { Outgoing } from "./outbox.js";
import {
  type DeliveryRow,
  deliveryRows,
  type NewCreate,
  withCachedSubscribers,
  withSubscribers,
} from "./outbox-rows.js";
import { insertQuery } from "./prepared.js";
import { perLimit } from "./queue/raw.js";
import { SUBSCRIPTION_BY_ID } from "./sqlite-keys.js";

/** SQLite's default limit on the values one statement binds (SQLITE_MAX_VARIABLE_NUMBER). */
const MAX_VALUES = 32_766;

/** A delivery's values in a row of deliveriesFor's VALUES, in order (DeliveryRow's fields). */
const DELIVERY_VALUES = [
  "id",
  "event_id",
  "subscription_id",
  "business_id",
  "event_name",
  "at",
  "resource_key",
] as const;

/**
 * One pending delivery per row of its VALUES (DELIVERY_VALUES, from
 * outbox-rows.ts's DeliveryRow) whose subscription is still live in the
 * database and the event's business's, whatever the caller's (cached) list
 * says: a webhook deleted or disabled by another connection (the breaker)
 * gets none. Only a per-resource webhook's delivery names its resource
 * (resourceKeyOf): no other claim reads it, and an unkeyed delivery skips
 * that index. PostgreSQL's statements (outbox-statement.ts) check the same.
 * The rows drive the loop whatever the planner's statistics say
 * (queue/held.ts). Bound values, not a JSON list: json_each rendered a row's
 * value back to JSON text for each `->>` that read a field of it (eight a
 * row). One text per row count, made when first asked for (perLimit).
 */
const deliveriesFor = perLimit(
  (rows) => `
INSERT INTO delivery (id, event_id, subscription_id, business_id, event_name, status, attempts, next_attempt_at,
  created_at, updated_at, resource_key)
SELECT v.column1, v.column2, s.id, s.business_id, v.column5, 'pending', 0, v.column6, v.column6, v.column6,
  CASE WHEN s.ordering = 'per_resource' THEN v.column7 END
FROM (VALUES ${Array.from({ length: rows }, () => "(?, ?, ?, ?, ?, ?, ?)").join(", ")}) AS v
CROSS JOIN subscription AS s INDEXED BY ${SUBSCRIPTION_BY_ID} ON s.id = v.column3
WHERE s.business_id = v.column4 AND s.deleted_at IS NULL AND s.state <> 'disabled'
RETURNING event_id`,
);

/**
 * `items` in slices of powers of two, each binding no more than SQLite's limit
 * on values (`values` per item): the statements are compiled per count, so
 * batches of any size up to CAREHOOKS_CREATE_BATCH need a handful of texts
 * per table, not one per size.
 */
function inChunks<T, R>(items: readonly T[], values: number, make: (slice: readonly T[]) => R): R[] {
  let largest = 1;
  while (largest * 2 * Math.max(1, values) <= MAX_VALUES) largest *= 2;
  const made: R[] = [];
  let start = 0;
  while (start < items.length) {
    let size = largest;
    while (size > items.length - start) size /= 2;
    made.push(make(items.slice(start, start + size)));
    start += size;
  }
  return made;
}

/** The inserts of rows of one shape (insertQuery's), in chunks. */
function insertsOf(db: Db, table: Parameters<typeof insertQuery>[1], rows: readonly object[]): CompiledQuery[] {
  const first = rows[0];
  if (first === undefined) return [];
  return inChunks(rows, Object.keys(first).length, (slice) => insertQuery(db, table, slice as never) as CompiledQuery);
}

/** The deliveriesFor statements of `rows`, in chunks. */
function deliveriesOf(rows: readonly DeliveryRow[]): CompiledQuery[] {
  return inChunks(rows, DELIVERY_VALUES.length, (slice) => {
    const parameters: unknown[] = [];
    for (const row of slice) for (const value of DELIVERY_VALUES) parameters.push(row[value]);
    return CompiledQuery.raw(deliveriesFor(slice.length), parameters);
  });
}

/** What writing creates takes: the inserts of their records and events, in order, then their deliveries'. */
interface CreateStatements {
  readonly inserts: readonly CompiledQuery[];
  /** Each returns the event id of every delivery it wrote. */
  readonly deliveries: readonly CompiledQuery[];
}

/**
 * The statements that write `outgoings` (their records: the same tables in
 * the same order for each, as the batcher groups them), compiled for `db`'s
 * dialect.
 */
function statementsOf(db: Db, outgoings: readonly Outgoing[]): CreateStatements {
  const first = outgoings[0];
  if (first === undefined) return { inserts: [], deliveries: [] };
  const tables = first.records.map((record) => record.table);
  for (const { records } of outgoings) {
    if (records.length !== tables.length || records.some((record, i) => record.table !== tables[i])) {
      throw new Error("creates written together must insert the same tables");
    }
  }
  const inserts = tables.flatMap((table, i) =>
    insertsOf(
      db,
      table,
      outgoings.map(({ records }) => (records[i] as Outgoing["records"][number]).row),
    ),
  );
  inserts.push(
    ...insertsOf(
      db,
      "event",
      outgoings.map(({ event }) => event),
    ),
  );
  return { inserts, deliveries: deliveriesOf(deliveryRows(outgoings)) };
}

/** How many deliveries each event got, by id, from what deliveriesFor returned (an event with none is there with 0). */
function countsOf(outgoings: readonly Outgoing[], written: readonly { event_id: string }[]): Map<string, number> {
  const counts = new Map(outgoings.map(({ event }) => [event.id, 0]));
  for (const { event_id } of written) counts.set(event_id, (counts.get(event_id) ?? 0) + 1);
  return counts;
}

/**
 * Writes the creates in `db`, which must be a transaction: their records,
 * events and deliveries, to the subscriptions each names or looks up here.
 * Returns how many deliveries each event got, by id.
 */
export async function writeCreates(db: Db, creates: readonly NewCreate[]): Promise<Map<string, number>> {
  const outgoings: Outgoing[] = [];
  for (const create of creates) outgoings.push(await withSubscribers(db, create));
  const { inserts, deliveries } = statementsOf(db, outgoings);
  for (const query of inserts) await db.executeQuery(query);
  const written: { event_id: string }[] = [];
  for (const query of deliveries) written.push(...(await db.executeQuery<{ event_id: string }>(query)).rows);
  return countsOf(outgoings, written);
}

/**
 * `writeCreates` with its statements run straight on the connection, inside a
 * write transaction (DialectAdapter.writeTransaction; `db` only compiles
 * them): what a batch of creates costs besides SQLite's own work is mostly
 * the query layer's, once per statement. Only for creates whose
 * subscriptions are named or cached: undefined, having written nothing, as
 * soon as one would have to be read (`writeCreates` then).
 */
export function writeCachedCreates(
  sql: SqlStatements,
  db: Db,
  creates: readonly NewCreate[],
): Map<string, number> | undefined {
  const outgoings = withCachedSubscribers(creates);
  if (outgoings === undefined) return undefined;
  const { inserts, deliveries } = statementsOf(db, outgoings);
  for (const query of inserts) sql.run(query.sql, query.parameters);
  const written: { event_id: string }[] = [];
  for (const query of deliveries) written.push(...sql.all<{ event_id: string }>(query.sql, query.parameters));
  return countsOf(outgoings, written);
}
