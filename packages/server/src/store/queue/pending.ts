/**
 * The webhooks that have pending deliveries, found from the deliveries, not
 * from the webhooks.
 *
 * A deployment registers far more webhooks than have work at any moment:
 * every clinic's endpoints, most of them idle. Statements that read every
 * webhook to find those with work (a claim's candidates, the dispatcher's
 * next wake-up, the queue's oldest due time, the beat's sweep of deleted and
 * disabled webhooks) cost in proportion to all of them: with
 * 10 000 idle webhooks beside a busy one, 108–127 µs of SQLite claim per
 * delivery instead of 16–22, on the thread that answers the API, and 14 ms of
 * PostgreSQL instead of 0.2 for each look for the next due time of an idle
 * worker (bench/queue-micro.mjs --idle-webhooks).
 *
 * The partial index delivery_due (subscription_id, next_attempt_at) of
 * pending deliveries holds each webhook with work once per delivery. A
 * recursive walk reads it as a skip scan: from each webhook id, one search
 * for the next greater one. It costs a search per webhook with pending
 * deliveries, however long their backlogs and however many webhooks are idle.
 * Neither database lists an index's distinct leading values this way by
 * itself: SQLite's skip-scan needs statistics it rarely has, and PostgreSQL's
 * (from version 18) serves a condition on a later column, not a list.
 */
import type { DialectAdapter } from "../dialect/adapter.js";
import { SUBSCRIPTION_BY_ID } from "../sqlite-keys.js";

/** SQLite's name for the partial index of pending deliveries by webhook and due time (migration 0002). */
const DELIVERY_DUE = "delivery_due";

/**
 * A recursive CTE `pending(id)`: each webhook id with a pending delivery once, then one NULL row
 * (the walk's end, or the only row when nothing is pending), which a join on the id drops. Goes in a
 * `WITH RECURSIVE` list. SQLite is held to the index whatever its statistics say.
 */
export function pendingWebhooks(dialect: DialectAdapter["name"]): string {
  const index = dialect === "sqlite" ? ` INDEXED BY ${DELIVERY_DUE}` : "";
  const next = (after: string) => `(
    SELECT n.subscription_id FROM delivery n${index}
    WHERE n.status = 'pending'${after} ORDER BY n.subscription_id LIMIT 1
  )`;
  return `pending(id) AS (
  SELECT ${next("")}
  UNION ALL
  SELECT ${next(" AND n.subscription_id > pending.id")} FROM pending WHERE pending.id IS NOT NULL
)`;
}

/** `pending` joined to each of its webhooks as `s`, found by its key (SQLite held to that order and index). */
export function pendingJoinedToWebhooks(dialect: DialectAdapter["name"]): string {
  return dialect === "sqlite"
    ? `pending CROSS JOIN subscription s INDEXED BY ${SUBSCRIPTION_BY_ID} ON s.id = pending.id`
    : "pending JOIN subscription s ON s.id = pending.id";
}

/** A webhook's first due time, its first entry in delivery_due: `webhookId` is SQL naming its id. */
export function firstDue(webhookId: string): string {
  return `(SELECT min(d.next_attempt_at) FROM delivery d WHERE d.subscription_id = ${webhookId} AND d.status = 'pending')`;
}
