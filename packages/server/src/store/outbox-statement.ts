/**
 * PostgreSQL's outbox write: the change's rows, the event and its
 * deliveries in one statement of data-modifying WITH clauses, so a create
 * is one round trip and its own transaction; several creates of one shape
 * are one statement too (`writeManyInOneStatement`, for outbox-batch.ts),
 * each table's rows from one JSON parameter. The deliveries go to the
 * subscriptions the caller names (from its cache) that are still live when
 * the statement runs: one deleted or disabled in another process a moment
 * ago gets nothing, even while that process's announcement is on its way.
 */
import { createHash } from "node:crypto";
import { CompiledQuery } from "kysely";
import { BoundedMap } from "../domain/bounded-map.js";
import { newId } from "../domain/ids.js";
import type { DialectAdapter } from "./dialect/adapter.js";
import type { Db } from "./open.js";
import type { Outgoing } from "./outbox.js";
import { deliveryRows, type Layout, layoutOf } from "./outbox-rows.js";

interface Shape {
  readonly text: string;
  /** Its name as a prepared statement: one per text, so a connection never sees one name with two texts. */
  readonly name: string;
  /** The columns of each record, then of the event, in parameter order. */
  readonly columns: readonly (readonly string[])[];
}

/** One text per combination of tables and columns: a handful. */
const SHAPES = 64;
const shapes = new BoundedMap<string, Shape>(SHAPES);
const batchShapes = new BoundedMap<string, Omit<Shape, "columns">>(SHAPES);

const quote = (name: string) => `"${name}"`;

/**
 * The deliveries' insert, shared by the one-create statement and the
 * several-create one: one pending delivery per row of `source` (aliased "v",
 * with "v"."id" and "v"."subscription_id") whose webhook is still live and the
 * event's business's; only a per-resource webhook's names its resource.
 * `event` gives each other value as an SQL expression.
 */
function deliveriesInsert(
  source: string,
  event: {
    readonly id: string;
    readonly name: string;
    readonly at: string;
    readonly businessId: string;
    readonly resourceKey: string;
  },
  returning: string,
): string {
  return `"d" AS (INSERT INTO "delivery" ("id", "event_id", "subscription_id", "business_id", "event_name", "status", "attempts", "next_attempt_at", "created_at", "updated_at", "resource_key")
    SELECT "v"."id", ${event.id}, "s"."id", "s"."business_id", ${event.name}, 'pending', 0, ${event.at}, ${event.at}, ${event.at},
      CASE WHEN "s"."ordering" = 'per_resource' THEN ${event.resourceKey} END
    FROM ${source}
    JOIN "subscription" AS "s" ON "s"."id" = "v"."subscription_id"
    WHERE "s"."business_id" = ${event.businessId} AND "s"."deleted_at" IS NULL AND "s"."state" <> 'disabled'
    RETURNING ${returning})`;
}

function shapeFor(tables: readonly string[], columns: readonly (readonly string[])[]): Shape {
  let n = 0;
  const inserts = tables.map((table, i) => {
    const names = columns[i] as readonly string[];
    const values = names.map(() => `$${++n}`);
    return `${quote(i === tables.length - 1 ? "e" : `r${i}`)} AS (INSERT INTO ${quote(table)} (${names.map(quote).join(", ")}) VALUES (${values.join(", ")}))`;
  });
  // The event's parameters, by column, for the deliveries.
  const eventColumns = columns.at(-1) as readonly string[];
  const event = (column: string) => `$${n - eventColumns.length + eventColumns.indexOf(column) + 1}`;
  const deliveries = deliveriesInsert(
    `unnest($${n + 1}::text[], $${n + 2}::text[]) AS "v" ("id", "subscription_id")`,
    {
      id: event("id"),
      name: event("name"),
      at: event("created_at"),
      businessId: event("business_id"),
      resourceKey: `${event("resource_type")} || ':' || ${event("resource_id")}`,
    },
    "1",
  );
  const text = `WITH ${[...inserts, deliveries].join(",\n")}\nSELECT count(*)::integer AS "deliveries" FROM "d"`;
  return { text, name: `carehooks_outbox_${createHash("sha256").update(text).digest("hex").slice(0, 24)}`, columns };
}

/**
 * Writes the records, the event and its deliveries in one statement; returns how many deliveries it created.
 * Outside a transaction it runs as a named prepared statement (`adapter.preparedQuery`): parsed and
 * planned once per connection, not on every create.
 */
export async function writeInOneStatement(
  adapter: DialectAdapter,
  db: Db,
  outgoing: Outgoing,
  layout: Layout = layoutOf(outgoing),
): Promise<number> {
  const { rows, key } = layout;
  const shape = shapes.getOrSet(key, () => shapeFor(layout.tables, layout.columns));
  const parameters: unknown[] = [];
  rows.forEach((row, i) => {
    for (const column of shape.columns[i] as readonly string[])
      parameters.push((row as Record<string, unknown>)[column]);
  });
  const { event, subscriptionIds } = outgoing;
  parameters.push(
    subscriptionIds.map(() => newId("delivery", event.created_at)),
    subscriptionIds,
  );
  const answer =
    adapter.preparedQuery && !db.isTransaction
      ? await adapter.preparedQuery<{ deliveries: number }>(shape.name, shape.text, parameters)
      : (await db.executeQuery<{ deliveries: number }>(CompiledQuery.raw(shape.text, parameters))).rows;
  return answer[0]?.deliveries ?? 0;
}

function batchShapeFor(tables: readonly string[], columns: readonly (readonly string[])[]): Omit<Shape, "columns"> {
  const inserts = tables.map((table, i) => {
    const names = (columns[i] as readonly string[]).map(quote).join(", ");
    const alias = i === tables.length - 1 ? "e" : `r${i}`;
    return `${quote(alias)} AS (INSERT INTO ${quote(table)} (${names}) SELECT ${names} FROM json_populate_recordset(NULL::${quote(table)}, $${i + 1}::json))`;
  });
  const deliveries = deliveriesInsert(
    `json_to_recordset($${tables.length + 1}::json)
      AS "v" ("id" text, "event_id" text, "subscription_id" text, "business_id" text, "event_name" text, "at" bigint, "resource_key" text)`,
    {
      id: `"v"."event_id"`,
      name: `"v"."event_name"`,
      at: `"v"."at"`,
      businessId: `"v"."business_id"`,
      resourceKey: `"v"."resource_key"`,
    },
    `"event_id"`,
  );
  const text = `WITH ${[...inserts, deliveries].join(",\n")}\nSELECT "event_id", count(*)::integer AS "deliveries" FROM "d" GROUP BY "event_id"`;
  return { text, name: `carehooks_outbox_batch_${createHash("sha256").update(text).digest("hex").slice(0, 24)}` };
}

/**
 * Writes several creates of one layout (`layouts`, each `outgoings`' own, all
 * with one key) in one statement, outside a transaction; returns how many
 * deliveries each event got, by id (an event that got none is absent).
 */
export async function writeManyInOneStatement(
  adapter: DialectAdapter,
  outgoings: readonly Outgoing[],
  layouts: readonly Layout[],
): Promise<Map<string, number>> {
  if (!adapter.preparedQuery) throw new Error("several creates are one statement on PostgreSQL only");
  const { key, tables, columns } = layouts[0] as Layout;
  const shape = batchShapes.getOrSet(key, () => batchShapeFor(tables, columns));
  const tableRows = columns.map((names, i) =>
    layouts.map((layout) => {
      const row = layout.rows[i] as Record<string, unknown>;
      return Object.fromEntries(names.map((name) => [name, row[name]]));
    }),
  );
  const deliveries = deliveryRows(outgoings);
  const parameters = [...tableRows.map((rows) => JSON.stringify(rows)), JSON.stringify(deliveries)];
  const rows = await adapter.preparedQuery<{ event_id: string; deliveries: number }>(
    shape.name,
    shape.text,
    parameters,
  );
  return new Map(rows.map((row) => [row.event_id, row.deliveries]));
}
