/**
 * The transactional outbox: the change's own rows, an event row and one
 * pending delivery per live subscription of the business that asked for the
 * event, written together. A failure leaves none of them; a commit leaves
 * all of them.
 */
import type { InsertObject } from "kysely";
import type { DialectAdapter } from "./dialect/adapter.js";
import type { Db } from "./open.js";
import { batchesCreates, outboxBatcherOf, writeAlone } from "./outbox-batch.js";
import { type NewCreate, withSubscribers } from "./outbox-rows.js";
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
export async function recordEvent(adapter: DialectAdapter, db: Db, create: NewCreate): Promise<number> {
  if (db.isTransaction) {
    // writeCreates looks the subscriptions up itself, through the same transaction.
    if (!adapter.writableCtes) return (await writeCreates(db, [create])).get(create.event.id) ?? 0;
    return writeInOneStatement(adapter, db, await withSubscribers(db, create));
  }
  // PostgreSQL reads outside a transaction without waiting for anything; SQLite in the one that writes.
  const named = adapter.writableCtes ? await withSubscribers(db, create) : create;
  return batchesCreates(adapter) ? outboxBatcherOf(adapter).write(named) : writeAlone(adapter, named);
}
