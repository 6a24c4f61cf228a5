import type { Updateable } from "kysely";
import { BoundedMap } from "../domain/bounded-map.js";
import { FILTER_FIELDS } from "../domain/event-catalog.js";
import { compileFilter, type EventPredicate } from "../domain/event-filter.js";
import type { Db } from "./open.js";
import { prepare } from "./prepared.js";
import type { SubscriptionOrdering, SubscriptionState, SubscriptionTable } from "./schema.js";

export type SubscriptionRow = Omit<SubscriptionTable, "state" | "failure_streak" | "ordering"> & {
  state: SubscriptionState;
  failure_streak: number;
  ordering: SubscriptionOrdering;
};

export type NewSubscription = Omit<
  SubscriptionRow,
  "state" | "failure_streak" | "state_reason" | "failing_since" | "probe_at" | "deleted_at"
>;

export async function insertSubscription(db: Db, row: NewSubscription): Promise<void> {
  await db
    .insertInto("subscription")
    .values({ ...row, state_reason: null, failing_since: null, probe_at: null, deleted_at: null })
    .execute();
}

/** A live (not deleted) subscription of the business, or undefined: another business's id is simply not found. */
export async function findSubscription(db: Db, businessId: string, id: string): Promise<SubscriptionRow | undefined> {
  return db
    .selectFrom("subscription")
    .selectAll()
    .where("id", "=", id)
    .where("business_id", "=", businessId)
    .where("deleted_at", "is", null)
    .executeTakeFirst();
}

/** One page of the business's live subscriptions in id order, after the cursor id. */
export async function listSubscriptions(
  db: Db,
  businessId: string,
  page: { after: string | undefined; limit: number },
): Promise<SubscriptionRow[]> {
  let query = db
    .selectFrom("subscription")
    .selectAll()
    .where("business_id", "=", businessId)
    .where("deleted_at", "is", null)
    .orderBy("id")
    .limit(page.limit);
  if (page.after) query = query.where("id", ">", page.after);
  return query.execute();
}

/** Applies the change to a live subscription of the business; false when there is none. */
export async function updateSubscription(
  db: Db,
  businessId: string,
  id: string,
  change: Updateable<SubscriptionTable>,
): Promise<boolean> {
  const result = await db
    .updateTable("subscription")
    .set(change)
    .where("id", "=", id)
    .where("business_id", "=", businessId)
    .where("deleted_at", "is", null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** What the outbox needs of a subscription that is neither deleted nor disabled (degraded ones still get deliveries). */
export interface LiveSubscription {
  readonly id: string;
  readonly eventNames: readonly string[];
  /** Its attribute filter; undefined: every event it asked for. */
  readonly matches?: EventPredicate;
}

const liveOf = prepare((db, p: { businessId: string }) =>
  db
    .selectFrom("subscription")
    .select(["id", "event_names", "filter"])
    .where("business_id", "=", p.businessId)
    .where("deleted_at", "is", null)
    .where("state", "!=", "disabled"),
);

export async function liveSubscriptionsOf(db: Db, businessId: string): Promise<LiveSubscription[]> {
  const rows = await liveOf.all(db, { businessId });
  return rows.map((row) => ({
    id: row.id,
    eventNames: JSON.parse(row.event_names) as string[],
    ...(row.filter === null ? {} : { matches: storedFilter(row.filter) }),
  }));
}

/** Compiled filters by their stored text: on SQLite a create reads its business's webhooks every time. */
const compiledFilters = new BoundedMap<string, EventPredicate>(10_000);

/**
 * A stored filter's predicate. It was checked when it was set; should a later
 * catalog no longer know one of its fields, it lets every event through:
 * a webhook getting more than it asked for loses nothing, one getting less would.
 */
function storedFilter(text: string): EventPredicate {
  return compiledFilters.getOrSet(text, () => {
    try {
      return compileFilter(JSON.parse(text), FILTER_FIELDS);
    } catch {
      return () => true;
    }
  });
}

/**
 * The ids of the subscriptions that asked for the event and whose filter it
 * matches. `payload` parses the event's payload, called only when a filter needs it.
 */
export function subscribersOf(
  subscriptions: readonly LiveSubscription[],
  eventName: string,
  payload: () => unknown,
): string[] {
  let parsed: unknown;
  const ids: string[] = [];
  for (const subscription of subscriptions) {
    if (!subscription.eventNames.includes(eventName)) continue;
    if (subscription.matches) {
      parsed ??= payload();
      if (!subscription.matches(parsed)) continue;
    }
    ids.push(subscription.id);
  }
  return ids;
}
