/**
 * PostgreSQL's creates, several to a statement. A create's cost there is
 * mostly its statement's and its commit's, not its rows' (measured in
 * docs/benchmarks.md), so the creates that reach the outbox in one turn of the
 * event loop, outside any transaction, are written together, up to
 * CAREHOOKS_CREATE_BATCH (`adapter.createBatch`) a statement: each table's
 * rows from one JSON parameter, the deliveries joined to their still-live
 * webhooks as the one-create statement does (outbox-statement.ts), one
 * commit for all, and each answered after it.
 *
 * They stand or fall together, so a batch the database refuses for
 * something one of its creates holds (a NUL byte in a text) is written
 * again one create at a time, each getting its own outcome; one refused
 * because the database cannot serve fails every create in it.
 */
import { createHash } from "node:crypto";
import { BoundedMap } from "../domain/bounded-map.js";
import { newId } from "../domain/ids.js";
import type { DialectAdapter } from "./dialect/adapter.js";
import type { Outgoing } from "./outbox.js";
import { deliveriesInsert, type Layout, layoutOf, quote, writeInOneStatement } from "./outbox-statement.js";
import { resourceKeyOf } from "./resource-key.js";

const SHAPES = 64;

type PreparedQuery = NonNullable<DialectAdapter["preparedQuery"]>;

interface Waiting {
  readonly outgoing: Outgoing;
  readonly layout: Layout;
  resolve(deliveries: number): void;
  reject(error: unknown): void;
}

/** Creates written since start, and the statements that wrote them: creates ÷ statements is how full batches run. */
export interface CreateBatchStats {
  readonly statements: number;
  readonly creates: number;
}

interface BatchShape {
  readonly name: string;
  readonly text: string;
}

function batchShapeFor(tables: readonly string[], columns: readonly (readonly string[])[]): BatchShape {
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

export class OutboxBatcher {
  readonly #adapter: DialectAdapter;
  readonly #query: PreparedQuery;
  /** The most creates in one statement (`adapter.createBatch`): a full batch is written at once. */
  readonly #maxBatch: number;
  readonly #waiting = new Map<string, Waiting[]>();
  /** One text per combination of tables and columns: a handful. */
  readonly #shapes = new BoundedMap<string, BatchShape>(SHAPES);
  #scheduled = false;
  #statements = 0;
  #creates = 0;

  constructor(adapter: DialectAdapter) {
    const { preparedQuery, createBatch } = adapter;
    if (!preparedQuery || createBatch === undefined) throw new Error("creates are batched on PostgreSQL only");
    this.#adapter = adapter;
    this.#query = preparedQuery.bind(adapter);
    this.#maxBatch = createBatch;
  }

  /** What was written and acknowledged so far (/metrics: carehooks_create_batches). */
  get stats(): CreateBatchStats {
    return { statements: this.#statements, creates: this.#creates };
  }

  /** Writes `outgoing` with the others of this turn; resolves to its deliveries once committed. */
  write(outgoing: Outgoing): Promise<number> {
    const layout = layoutOf(outgoing);
    const { key } = layout;
    return new Promise((resolve, reject) => {
      let waiting = this.#waiting.get(key);
      if (!waiting) {
        waiting = [];
        this.#waiting.set(key, waiting);
      }
      waiting.push({ outgoing, layout, resolve, reject });
      if (waiting.length >= this.#maxBatch) {
        this.#waiting.delete(key);
        void this.#write(waiting);
      } else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#writeAll());
      }
    });
  }

  #writeAll(): void {
    this.#scheduled = false;
    const batches = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const waiting of batches) void this.#write(waiting);
  }

  async #write(waiting: readonly Waiting[]): Promise<void> {
    if (waiting.length === 1) return this.#writeOne(waiting[0] as Waiting);
    try {
      const written = await this.#writeMany(waiting);
      this.#count(waiting.length);
      for (const item of waiting) item.resolve(written.get(item.outgoing.event.id) ?? 0);
    } catch (error) {
      if (this.#adapter.isUnavailable(error)) {
        for (const item of waiting) item.reject(error);
        return;
      }
      // Something one of them holds: each on its own, for its own answer.
      await Promise.all(waiting.map((item) => this.#writeOne(item)));
    }
  }

  async #writeOne(item: Waiting): Promise<void> {
    try {
      const deliveries = await writeInOneStatement(this.#adapter, this.#adapter.db, item.outgoing, item.layout);
      this.#count(1);
      item.resolve(deliveries);
    } catch (error) {
      item.reject(error);
    }
  }

  #count(creates: number): void {
    this.#statements += 1;
    this.#creates += creates;
  }

  async #writeMany(waiting: readonly Waiting[]): Promise<Map<string, number>> {
    // One shape: the same tables, and the same columns in each.
    const { key, tables, columns } = (waiting[0] as Waiting).layout;
    const shape = this.#shapes.getOrSet(key, () => batchShapeFor(tables, columns));
    const tableRows = columns.map((names, i) =>
      waiting.map(({ layout }) => {
        const row = layout.rows[i] as Record<string, unknown>;
        return Object.fromEntries(names.map((name) => [name, row[name]]));
      }),
    );
    const outgoings = waiting.map((item) => item.outgoing);
    const deliveries = outgoings.flatMap(({ event, subscriptionIds }) =>
      subscriptionIds.map((subscriptionId) => ({
        id: newId("delivery", event.created_at),
        event_id: event.id,
        subscription_id: subscriptionId,
        business_id: event.business_id,
        event_name: event.name,
        at: event.created_at,
        resource_key: resourceKeyOf(event),
      })),
    );
    const parameters = [...tableRows.map((rows) => JSON.stringify(rows)), JSON.stringify(deliveries)];
    const rows = await this.#query<{ event_id: string; deliveries: number }>(shape.name, shape.text, parameters);
    return new Map(rows.map((row) => [row.event_id, row.deliveries]));
  }
}

const batchers = new WeakMap<DialectAdapter, OutboxBatcher>();

/** True where creates outside a transaction go through the batcher: PostgreSQL, CAREHOOKS_CREATE_BATCH above 1. */
export function batchesCreates(adapter: DialectAdapter): boolean {
  return adapter.preparedQuery !== undefined && (adapter.createBatch ?? 1) > 1;
}

/** The adapter's batcher (PostgreSQL, outside a transaction). */
export function outboxBatcherOf(adapter: DialectAdapter): OutboxBatcher {
  let batcher = batchers.get(adapter);
  if (!batcher) {
    batcher = new OutboxBatcher(adapter);
    batchers.set(adapter, batcher);
  }
  return batcher;
}
