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
import { writeInOneStatement } from "./outbox-statement.js";
import { insertRows } from "./prepared.js";
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
 * deliveries were created. On PostgreSQL one statement, atomic by itself
 * (`db` need not be a transaction); on SQLite statements of the caller's
 * transaction, which `db` must be.
 */
export async function recordEvent(adapter: DialectAdapter, db: Db, outgoing: Outgoing): Promise<number> {
  if (adapter.writableCtes) return writeInOneStatement(adapter, db, outgoing);
  for (const { table, row } of outgoing.records) await insertRows(db, table, [row] as never);
  await insertRows(db, "event", [outgoing.event]);
  const { event, subscriptionIds } = outgoing;
  await insertRows(
    db,
    "delivery",
    subscriptionIds.map((subscriptionId) => ({
      id: newId("delivery", event.created_at),
      event_id: event.id,
      subscription_id: subscriptionId,
      business_id: event.business_id,
      event_name: event.name,
      status: "pending" as const,
      attempts: 0,
      next_attempt_at: event.created_at,
      lease_token: null,
      lease_expires_at: null,
      last_status_code: null,
      last_error: null,
      created_at: event.created_at,
      updated_at: event.created_at,
      resource_key: resourceKeyOf(event),
    })),
  );
  return subscriptionIds.length;
}

/** What per-resource ordering orders a delivery by: its event's resource. */
export function resourceKeyOf(event: Pick<NewEvent, "resource_type" | "resource_id">): string {
  return `${event.resource_type}:${event.resource_id}`;
}
