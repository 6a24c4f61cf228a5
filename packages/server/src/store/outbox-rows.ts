/**
 * The rows a create writes, as both dialects' outbox statements take them:
 * the subscriptions it goes to (named, or looked up where it is written), its
 * layout (which tables, which columns: creates of one layout can share a
 * statement) and its deliveries, one per subscription it names.
 */
import { newId } from "../domain/ids.js";
import type { Db } from "./open.js";
import type { Outgoing } from "./outbox.js";
import { columnsOf } from "./prepared.js";
import { resourceKeyOf } from "./resource-key.js";

/**
 * Finds the subscriptions an event goes to, reading through `db`; `cached`,
 * when given, answers the same without reading, or undefined when only a
 * read can (the per-process cache does not hold them).
 */
export type SubscriberLookup = ((db: Db) => Promise<readonly string[]>) & {
  readonly cached?: () => readonly string[] | undefined;
};

/**
 * A create as its caller hands it over: the subscriptions, or how to find
 * them. SQLite looks them up in the transaction that writes the create: a
 * read outside it, while the connection's shared transaction is open, would
 * wait for that transaction's commit and flush (dialect/sqlite-durable.ts).
 */
export interface NewCreate extends Omit<Outgoing, "subscriptionIds"> {
  readonly subscriptionIds: readonly string[] | SubscriberLookup;
}

/** `create` with its subscriptions looked up through `db`, if it did not name them. */
export async function withSubscribers(db: Db, create: NewCreate): Promise<Outgoing> {
  const { subscriptionIds } = create;
  return typeof subscriptionIds === "function"
    ? { ...create, subscriptionIds: await subscriptionIds(db) }
    : (create as Outgoing);
}

/**
 * The creates with their subscriptions, each named or answered by its
 * lookup's cache; undefined as soon as one lookup would have to read.
 */
export function withCachedSubscribers(creates: readonly NewCreate[]): Outgoing[] | undefined {
  const outgoings: Outgoing[] = [];
  for (const create of creates) {
    const { subscriptionIds } = create;
    if (typeof subscriptionIds !== "function") {
      outgoings.push(create as Outgoing);
      continue;
    }
    const cached = subscriptionIds.cached?.();
    if (cached === undefined) return undefined;
    outgoings.push({ ...create, subscriptionIds: cached });
  }
  return outgoings;
}

/** A create's tables (its records', then "event"), their rows and columns, and the key of that shape. */
export interface Layout {
  readonly tables: readonly string[];
  readonly rows: readonly object[];
  readonly columns: readonly (readonly string[])[];
  /** Creates with the same key have the same tables and columns: one statement text serves them. */
  readonly key: string;
}

export function layoutOf(outgoing: Pick<Outgoing, "records" | "event">): Layout {
  const rows: object[] = [...outgoing.records.map((record) => record.row), outgoing.event];
  const tables = [...outgoing.records.map((record) => record.table), "event"];
  const columns = rows.map((row) => columnsOf(row as Record<string, unknown>));
  const key = tables.map((table, i) => `${table}(${(columns[i] as string[]).join(",")})`).join(";");
  return { tables, rows, columns, key };
}

/** A pending delivery to write, if its subscription is still live when the statement runs. */
export interface DeliveryRow {
  readonly id: string;
  readonly event_id: string;
  readonly subscription_id: string;
  readonly business_id: string;
  readonly event_name: string;
  /** The event's created_at: the delivery's creation and first due time. */
  readonly at: number;
  /** resourceKeyOf the event; the statements keep it for per-resource webhooks only. */
  readonly resource_key: string;
}

/** The deliveries of several creates, each event's to the subscriptions it names, with new ids. */
export function deliveryRows(outgoings: readonly Outgoing[]): DeliveryRow[] {
  return outgoings.flatMap(({ event, subscriptionIds }) => {
    const resourceKey = resourceKeyOf(event);
    return subscriptionIds.map((subscriptionId) => ({
      id: newId("delivery", event.created_at),
      event_id: event.id,
      subscription_id: subscriptionId,
      business_id: event.business_id,
      event_name: event.name,
      at: event.created_at,
      resource_key: resourceKey,
    }));
  });
}
