/**
 * SQLite's outbox write: the records, events and deliveries of one or more
 * creates as statements of the caller's transaction, each table's rows in a
 * few multi-row INSERTs and every delivery in one more, so several creates
 * cost about as many statements as one (store/outbox-batch.ts gathers them).
 */
import type { CompiledQuery } from "kysely";
import type { SqlStatements } from "./dialect/adapter.js";
import type { Db } from "./open.js";
import type { Outgoing } from "./outbox.js";
import { deliveryRows, type NewCreate, withCachedSubscribers, withSubscribers } from "./outbox-rows.js";
import { insertQuery } from "./prepared.js";
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
 * The inserts of rows of one shape, in chunks of powers of two, each within
 * SQLite's limit on bound values: insertQuery compiles a statement per row
 * count, so batches of any size up to CAREHOOKS_CREATE_BATCH need a handful
 * of them per table, not one per size.
 */
function insertsOf(db: Db, table: Parameters<typeof insertQuery>[1], rows: readonly object[]): CompiledQuery[] {
  const first = rows[0];
  if (first === undefined) return [];
  let largest = 1;
  const columns = Math.max(1, Object.keys(first).length);
  while (largest * 2 * columns <= MAX_VALUES) largest *= 2;
  const queries: CompiledQuery[] = [];
  let start = 0;
  while (start < rows.length) {
    let size = largest;
    while (size > rows.length - start) size /= 2;
    queries.push(insertQuery(db, table, rows.slice(start, start + size) as never) as CompiledQuery);
    start += size;
  }
  return queries;
}

/** What writing creates takes: the inserts of their records and events, in order, then their deliveries. */
interface CreateStatements {
  readonly inserts: readonly CompiledQuery[];
  /** DELIVERIES' parameters, or undefined when no create goes to any webhook. */
  readonly deliveries: { readonly deliveries: string } | undefined;
}

/**
 * The statements that write `outgoings` (their records: the same tables in
 * the same order for each, as the batcher groups them), compiled for `db`'s
 * dialect.
 */
function statementsOf(db: Db, outgoings: readonly Outgoing[]): CreateStatements {
  const first = outgoings[0];
  if (first === undefined) return { inserts: [], deliveries: undefined };
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
  const rows = deliveryRows(outgoings);
  return { inserts, deliveries: rows.length === 0 ? undefined : { deliveries: JSON.stringify(rows) } };
}

/** How many deliveries each event got, by id, from DELIVERIES' rows (an event with none is there with 0). */
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
  return countsOf(outgoings, deliveries ? await rowsOf<{ event_id: string }>(db, DELIVERIES, deliveries) : []);
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
  return countsOf(outgoings, deliveries ? sql.all<{ event_id: string }>(DELIVERIES, deliveries) : []);
}
