/**
 * Counts for the dashboard's overview, over one business's live webhooks.
 * Every query walks the existing (subscription_id, id) and pending-due
 * indexes, bounded below by the first delivery id of the window (ids start
 * with their creation time), so no new index slows the delivery path down.
 */
import { sql } from "kysely";
import { firstIdAt } from "../domain/ids.js";
import type { Db } from "./open.js";

export interface StatusCount {
  readonly status: string;
  readonly n: number;
}

export async function liveSubscriptionIds(db: Db, businessId: string): Promise<string[]> {
  const rows = await db
    .selectFrom("subscription")
    .select("id")
    .where("business_id", "=", businessId)
    .where("deleted_at", "is", null)
    .execute();
  return rows.map((row) => row.id);
}

/** The webhooks' deliveries created since `since`, found through (subscription_id, id). */
function createdSince(db: Db, subscriptionIds: readonly string[], since: number) {
  return db
    .selectFrom("delivery")
    .where("subscription_id", "in", subscriptionIds)
    .where("id", ">=", firstIdAt("delivery", since - 60_000))
    .where("created_at", ">=", since);
}

/** Deliveries created since `since`, by minute of creation and status. */
export async function deliveriesPerMinute(
  db: Db,
  subscriptionIds: readonly string[],
  since: number,
): Promise<{ minute: number; status: string; n: number }[]> {
  if (subscriptionIds.length === 0) return [];
  const minute = sql<number>`created_at / 60000`;
  const rows = await createdSince(db, subscriptionIds, since)
    .select([minute.as("minute"), "status"])
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .groupBy([minute, "status"])
    .execute();
  return rows.map((row) => ({ minute: Number(row.minute), status: row.status, n: Number(row.n) }));
}

/** Deliveries created since `since`, by webhook and status. */
export async function deliveriesPerSubscription(
  db: Db,
  subscriptionIds: readonly string[],
  since: number,
): Promise<{ subscription_id: string; status: string; n: number }[]> {
  if (subscriptionIds.length === 0) return [];
  const rows = await createdSince(db, subscriptionIds, since)
    .select(["subscription_id", "status"])
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .groupBy(["subscription_id", "status"])
    .execute();
  return rows.map((row) => ({ subscription_id: row.subscription_id, status: row.status, n: Number(row.n) }));
}

/** The business's queue: pending and in-flight counts, and the earliest due time of a pending one. */
export async function businessQueue(
  db: Db,
  subscriptionIds: readonly string[],
): Promise<{ pending: number; inFlight: number; oldestDue: number | undefined }> {
  if (subscriptionIds.length === 0) return { pending: 0, inFlight: 0, oldestDue: undefined };
  const rows = await db
    .selectFrom("delivery")
    .select(["status"])
    .select((eb) => [eb.fn.countAll<number>().as("n"), eb.fn.min("next_attempt_at").as("oldest")])
    .where("subscription_id", "in", subscriptionIds)
    .where("status", "in", ["pending", "in_flight"])
    .groupBy("status")
    .execute();
  const pending = rows.find((row) => row.status === "pending");
  return {
    pending: Number(pending?.n ?? 0),
    inFlight: Number(rows.find((row) => row.status === "in_flight")?.n ?? 0),
    oldestDue: pending?.oldest === null || pending?.oldest === undefined ? undefined : Number(pending.oldest),
  };
}
