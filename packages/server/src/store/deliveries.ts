/** Reading and re-queuing deliveries: the delivery log, resend, recover, cancellation. */
import { sql } from "kysely";
import type { DialectAdapter } from "./dialect/adapter.js";
import type { Db } from "./open.js";
import { firstDue, pendingWebhooks } from "./queue/pending.js";
import { rowsOf } from "./queue/raw.js";
import { EVENT_RESOURCE_KEY } from "./resource-key.js";
import type { AttemptTable, DeliveryStatus, DeliveryTable } from "./schema.js";

export type DeliveryRow = Omit<DeliveryTable, "status" | "attempts" | "retries_from"> & {
  status: DeliveryStatus;
  attempts: number;
  retries_from: number;
};
export type AttemptRow = AttemptTable;

export interface DeliveryFilter {
  readonly status?: DeliveryStatus | undefined;
  readonly event_name?: string | undefined;
  readonly since?: number | undefined;
  readonly until?: number | undefined;
}

export async function listDeliveries(
  db: Db,
  businessId: string,
  subscriptionId: string,
  filter: DeliveryFilter,
  page: { after: string | undefined; limit: number; newestFirst?: boolean },
): Promise<DeliveryRow[]> {
  let query = db
    .selectFrom("delivery")
    .selectAll()
    .where("business_id", "=", businessId)
    .where("subscription_id", "=", subscriptionId);
  if (filter.status) query = query.where("status", "=", filter.status);
  if (filter.event_name) query = query.where("event_name", "=", filter.event_name);
  if (filter.since !== undefined) query = query.where("created_at", ">=", filter.since);
  if (filter.until !== undefined) query = query.where("created_at", "<", filter.until);
  if (page.after) query = query.where("id", page.newestFirst ? "<" : ">", page.after);
  return query
    .orderBy("id", page.newestFirst ? "desc" : "asc")
    .limit(page.limit)
    .execute();
}

export async function findDelivery(db: Db, businessId: string, id: string): Promise<DeliveryRow | undefined> {
  return db
    .selectFrom("delivery")
    .selectAll()
    .where("id", "=", id)
    .where("business_id", "=", businessId)
    .executeTakeFirst();
}

export async function listAttempts(db: Db, deliveryId: string): Promise<AttemptRow[]> {
  return db.selectFrom("attempt").selectAll().where("delivery_id", "=", deliveryId).orderBy("id").execute();
}

/**
 * The change that puts a finished delivery back in the queue as a new round of
 * the retry schedule. A delivery that finished while its webhook was unordered
 * has no resource; if the webhook orders per resource now, it gets one, so it
 * waits its turn like the rest (see keyOpenDeliveries).
 */
const requeue = (now: number) => ({
  status: "pending" as const,
  next_attempt_at: now,
  retries_from: sql<number>`attempts`,
  last_error: null,
  updated_at: now,
  resource_key: sql<string | null>`coalesce(resource_key, (
    SELECT ${EVENT_RESOURCE_KEY} FROM event e JOIN subscription s ON s.id = delivery.subscription_id
    WHERE e.id = delivery.event_id AND s.ordering = 'per_resource'))`,
});

/** Puts a finished delivery back in the queue as a new round of the retry schedule; false when it is not finished. */
export async function resendDelivery(db: Db, businessId: string, id: string, now: number): Promise<boolean> {
  const result = await db
    .updateTable("delivery")
    .set(requeue(now))
    .where("id", "=", id)
    .where("business_id", "=", businessId)
    .where("status", "in", ["succeeded", "failed", "cancelled"])
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Re-queues up to `limit` failed or cancelled deliveries of a subscription created in [since, until); returns how many. */
export async function requeueFailed(
  db: Db,
  subscriptionId: string,
  range: { since: number; until: number },
  limit: number,
  now: number,
): Promise<number> {
  const ids = await db
    .selectFrom("delivery")
    .select("id")
    .where("subscription_id", "=", subscriptionId)
    .where("status", "in", ["failed", "cancelled"])
    .where("created_at", ">=", range.since)
    .where("created_at", "<", range.until)
    .orderBy("id")
    .limit(limit)
    .execute();
  if (ids.length === 0) return 0;
  const result = await db
    .updateTable("delivery")
    .set(requeue(now))
    .where(
      "id",
      "in",
      ids.map((row) => row.id),
    )
    .where("status", "in", ["failed", "cancelled"])
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export async function countFailed(
  db: Db,
  subscriptionId: string,
  range: { since: number; until: number },
): Promise<number> {
  const row = await db
    .selectFrom("delivery")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("subscription_id", "=", subscriptionId)
    .where("status", "in", ["failed", "cancelled"])
    .where("created_at", ">=", range.since)
    .where("created_at", "<", range.until)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Stops a subscription's queued deliveries (on delete or disable). */
export async function cancelPendingDeliveries(
  db: Db,
  subscriptionId: string,
  reason: string,
  now: number,
): Promise<number> {
  const result = await db
    .updateTable("delivery")
    .set({ status: "cancelled", next_attempt_at: null, last_error: reason, updated_at: now })
    .where("subscription_id", "=", subscriptionId)
    .where("status", "=", sql.lit<"pending">("pending"))
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/**
 * Names the resource of a webhook's open deliveries that have none, when it
 * switches to per-resource ordering: only an ordered webhook's deliveries are
 * written with their resource (outbox.ts), and its claim holds back a delivery
 * while an earlier one of the same resource is open. One statement per status,
 * each reading its own partial index, not the webhook's whole history. A
 * create racing the switch on PostgreSQL is caught by keyLateDeliveries.
 */
export async function keyOpenDeliveries(db: Db, subscriptionId: string): Promise<void> {
  for (const status of ["pending", "in_flight"] as const) {
    await sql`
      UPDATE delivery SET resource_key = (SELECT ${EVENT_RESOURCE_KEY} FROM event e WHERE e.id = delivery.event_id)
      WHERE subscription_id = ${subscriptionId} AND status = ${sql.lit(status)} AND resource_key IS NULL`.execute(db);
  }
}

/** How long a switch to per-resource ordering waits for the creates it raced (PostgreSQL). */
const SWITCH_WAIT_MS = 2_000;
/** How often it looks whether they have ended. */
const SWITCH_POLL_MS = 10;

/**
 * PostgreSQL, once a switch to per-resource ordering has committed: a create
 * that read the webhook as unordered just before the switch can commit its
 * delivery unkeyed after keyOpenDeliveries ran. Such a create has held its
 * lock on the delivery table since before its statement read the webhook
 * (PostgreSQL locks a statement's tables before it takes its snapshot), so it
 * is among the transactions holding that lock now: this waits until every one
 * of them has ended, at most SWITCH_WAIT_MS, looking every SWITCH_POLL_MS
 * without taking a lock itself (nobody else waits), then keys what they wrote.
 * A create that starts later reads the new ordering. Between such a create's
 * commit and the keying (a poll interval) its delivery could still be claimed
 * unordered. False when the wait timed out.
 */
export async function keyLateDeliveries(db: Db, subscriptionId: string): Promise<boolean> {
  const writers = await sql<{ ids: string[] | null }>`
    SELECT array_agg(virtualtransaction) AS ids FROM pg_locks
    WHERE locktype = 'relation' AND relation = 'delivery'::regclass AND mode = 'RowExclusiveLock'
      AND granted AND pid <> pg_backend_pid()`.execute(db);
  const ids = writers.rows[0]?.ids ?? [];
  const running = async (): Promise<boolean> => {
    if (ids.length === 0) return false;
    const left = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'virtualxid' AND virtualxid = ANY(${ids})`.execute(db);
    return (left.rows[0]?.n ?? 0) > 0;
  };
  const deadline = Date.now() + SWITCH_WAIT_MS;
  let waiting = await running();
  while (waiting && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, SWITCH_POLL_MS));
    waiting = await running();
  }
  await keyOpenDeliveries(db, subscriptionId);
  return !waiting;
}

export interface QueueLag {
  readonly pending: number;
  readonly inFlight: number;
  /** Age of the oldest due delivery, ms; 0 when nothing is due. */
  readonly oldestDueMs: number;
}

/**
 * The queue's depth. Each status spelled out, so each count reads a partial index of its own
 * (delivery_due, one of the in-flight ones): `status IN (…)` with bound values matched neither, and
 * /readyz and every /metrics scrape scanned the whole table, delivered history included. The oldest
 * due time is the least of each pending webhook's first entry in delivery_due (queue/pending.ts): a
 * search per webhook with work, none per idle one, and no index of its own for every create to write.
 */
const queueLagOf = (dialect: DialectAdapter["name"]) => `
WITH RECURSIVE ${pendingWebhooks(dialect)}
SELECT (SELECT count(*) FROM delivery WHERE status = 'pending') AS pending,
  (SELECT min(${firstDue("pending.id")}) FROM pending) AS oldest,
  (SELECT count(*) FROM delivery WHERE status = 'in_flight') AS in_flight`;
const QUEUE_LAG = { sqlite: queueLagOf("sqlite"), postgres: queueLagOf("postgres") };

export async function queueLag(adapter: DialectAdapter, now: number): Promise<QueueLag> {
  const [row] = await rowsOf<{ pending: number | string; oldest: number | string | null; in_flight: number | string }>(
    adapter.db,
    QUEUE_LAG[adapter.name],
    [],
  );
  // PostgreSQL's count and bigint arrive as text.
  const oldest = row?.oldest === null || row?.oldest === undefined ? undefined : Number(row.oldest);
  return {
    pending: Number(row?.pending ?? 0),
    inFlight: Number(row?.in_flight ?? 0),
    oldestDueMs: oldest !== undefined && oldest < now ? now - oldest : 0,
  };
}
