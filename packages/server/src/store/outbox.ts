/**
 * The transactional outbox: the change's own rows, an event row and one
 * pending delivery per live subscription of the business that asked for the
 * event, written together. A failure leaves none of them; a commit leaves
 * all of them.
 */
import type { InsertObject } from "kysely";
import type { DialectAdapter } from "./dialect/adapter.js";
import type { Db } from "./open.js";
import { batchesCreates, outboxBatcherOf } from "./outbox-batch.js";
import { writeCreates } from "./outbox-sqlite.js";
import { writeInOneStatement } from "./outbox-statement.js";
import type { Database, EventTable } from "./schema.js";

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
 * deliveries were created. `db` may be a transaction, whose statements they
 * become; outside one they are atomic by themselves, and shared with the
 * other creates of this turn (outbox-batch.ts) unless CAREHOOKS_CREATE_BATCH
 * is 1: on PostgreSQL one statement, on SQLite one transaction.
 */
export async function recordEvent(adapter: DialectAdapter, db: Db, outgoing: Outgoing): Promise<number> {
  if (!db.isTransaction && batchesCreates(adapter)) return outboxBatcherOf(adapter).write(outgoing);
  if (adapter.writableCtes) return writeInOneStatement(adapter, db, outgoing);
  const written = db.isTransaction
    ? await writeCreates(db, [outgoing])
    : await db.transaction().execute((trx) => writeCreates(trx, [outgoing]));
  return written.get(outgoing.event.id) ?? 0;
}
