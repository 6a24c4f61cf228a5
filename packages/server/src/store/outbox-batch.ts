/**
 * Creates, several at a time. A create's cost is mostly its statements' and
 * its commit's, not its rows' (measured in docs/benchmarks-history.md), so the
 * creates that reach the outbox in one turn of the event loop, outside any
 * transaction, are written together, up to CAREHOOKS_CREATE_BATCH
 * (`adapter.createBatch`) at a time, and each is answered after their commit:
 * - PostgreSQL: one statement (outbox-statement.ts), each table's rows from
 *   one JSON parameter, the deliveries joined to their still-live webhooks.
 * - SQLite: one transaction (outbox-sqlite.ts), each table's rows in a few
 *   multi-row INSERTs and the deliveries in a few more, instead of a
 *   transaction and a statement per row for each create. It is one member of
 *   the shared transaction (dialect/sqlite-shared-transaction.ts), committed
 *   and flushed with it; the subscriptions are looked up inside it. When the
 *   per-process cache holds them all (nearly always), its statements run
 *   straight on the connection (DialectAdapter.writeTransaction), without
 *   the query layer's promises and wrappers around each.
 *
 * They stand or fall together, so a batch the database refuses for
 * something one of its creates holds (a NUL byte in a text) is written
 * again one create at a time, each getting its own outcome; one refused
 * because the database cannot serve fails every create in it.
 */
import type { DialectAdapter } from "./dialect/adapter.js";
import type { Outgoing } from "./outbox.js";
import { type Layout, layoutOf, type NewCreate, withCachedSubscribers } from "./outbox-rows.js";
import { writeCachedCreates, writeCreates } from "./outbox-sqlite.js";
import { writeInOneStatement, writeManyInOneStatement } from "./outbox-statement.js";

interface Waiting {
  readonly create: NewCreate;
  readonly layout: Layout;
  resolve(deliveries: number): void;
  reject(error: unknown): void;
}

/** Creates written since start, and the batches that wrote them: creates ÷ batches is how full batches run. */
export interface CreateBatchStats {
  readonly batches: number;
  readonly creates: number;
}

/** How a dialect writes creates outside a transaction: several of one layout together, or one alone. */
interface CreateWriter {
  /** Deliveries per event id; an event missing from the map got none. */
  many(waiting: readonly Waiting[]): Promise<Map<string, number>>;
  one(create: NewCreate, layout?: Layout): Promise<number>;
}

/** PostgreSQL's creates reach the writer with their subscriptions (outbox.ts, recordEvent). */
function named(create: NewCreate): Outgoing {
  if (typeof create.subscriptionIds === "function") throw new Error("a create reached PostgreSQL unnamed");
  return create as Outgoing;
}

const writers = new WeakMap<DialectAdapter, CreateWriter>();

function writerFor(adapter: DialectAdapter): CreateWriter {
  let writer = writers.get(adapter);
  if (writer) return writer;
  const { writeTransaction } = adapter;
  const inTransaction = async (creates: readonly NewCreate[]) => {
    // Straight on the connection when their webhooks are cached (nearly always), else through the query layer.
    // Another connection's commit empties every cache: a batch whose first create would miss goes there at once,
    // without a transaction that writes nothing first. Inside the transaction the lookups are what counts.
    if (writeTransaction && withCachedSubscribers(creates.slice(0, 1)) !== undefined) {
      const written = await writeTransaction((sql) => writeCachedCreates(sql, adapter.db, creates));
      if (written) return written;
    }
    return adapter.db.transaction().execute((trx) => writeCreates(trx, creates));
  };
  writer = adapter.writableCtes
    ? {
        many: (waiting) =>
          writeManyInOneStatement(
            adapter,
            waiting.map((item) => named(item.create)),
            waiting.map((item) => item.layout),
          ),
        one: (create, layout) => writeInOneStatement(adapter, adapter.db, named(create), layout),
      }
    : {
        many: (waiting) => inTransaction(waiting.map((item) => item.create)),
        one: async (create) => (await inTransaction([create])).get(create.event.id) ?? 0,
      };
  writers.set(adapter, writer);
  return writer;
}

/** Writes one create outside a transaction, atomically, with no other (CAREHOOKS_CREATE_BATCH=1). */
export function writeAlone(adapter: DialectAdapter, create: NewCreate): Promise<number> {
  return writerFor(adapter).one(create);
}

export class OutboxBatcher {
  readonly #adapter: DialectAdapter;
  readonly #writer: CreateWriter;
  /** The most creates written together (`adapter.createBatch`): a full batch is written at once. */
  readonly #maxBatch: number;
  readonly #waiting = new Map<string, Waiting[]>();
  #scheduled = false;
  #batches = 0;
  #creates = 0;

  constructor(adapter: DialectAdapter) {
    this.#adapter = adapter;
    this.#writer = writerFor(adapter);
    this.#maxBatch = adapter.createBatch;
  }

  /** What was written and acknowledged so far (/metrics: carehooks_create_batches). */
  get stats(): CreateBatchStats {
    return { batches: this.#batches, creates: this.#creates };
  }

  /** Writes `create` with the others of this turn; resolves to its deliveries once committed. */
  write(create: NewCreate): Promise<number> {
    const layout = layoutOf(create);
    const { key } = layout;
    return new Promise((resolve, reject) => {
      let waiting = this.#waiting.get(key);
      if (!waiting) {
        waiting = [];
        this.#waiting.set(key, waiting);
      }
      waiting.push({ create, layout, resolve, reject });
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
      const written = await this.#writer.many(waiting);
      this.#count(waiting.length);
      for (const item of waiting) item.resolve(written.get(item.create.event.id) ?? 0);
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
      const deliveries = await this.#writer.one(item.create, item.layout);
      this.#count(1);
      item.resolve(deliveries);
    } catch (error) {
      item.reject(error);
    }
  }

  #count(creates: number): void {
    this.#batches += 1;
    this.#creates += creates;
  }
}

const batchers = new WeakMap<DialectAdapter, OutboxBatcher>();

/** True where creates outside a transaction go through the batcher: CAREHOOKS_CREATE_BATCH above 1. */
export function batchesCreates(adapter: DialectAdapter): boolean {
  return adapter.createBatch > 1;
}

/** The adapter's batcher (outside a transaction). */
export function outboxBatcherOf(adapter: DialectAdapter): OutboxBatcher {
  let batcher = batchers.get(adapter);
  if (!batcher) {
    batcher = new OutboxBatcher(adapter);
    batchers.set(adapter, batcher);
  }
  return batcher;
}
