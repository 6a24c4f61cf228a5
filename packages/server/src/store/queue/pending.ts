/**
 * The webhooks that have pending deliveries, found from the deliveries, not
 * from the webhooks.
 *
 * A deployment registers far more webhooks than have work at any moment:
 * every clinic's endpoints, most of them idle. Statements that looked at
 * every live webhook for its first due delivery (a claim's candidates, the
 * dispatcher's next wake-up, the queue's oldest due time) cost in proportion
 * to all of them: with 10 000 idle webhooks and one busy one, 5.6 ms a SQLite
 * claim instead of 1.0, on the thread that answers the API, and 12 ms of
 * PostgreSQL for each next-due read of an idle worker's poll.
 *
 * The partial index delivery_due (subscription_id, next_attempt_at) of
 * pending deliveries holds each webhook with work once per delivery. A
 * recursive walk reads it as a skip scan: from each webhook id, one search
 * for the next greater one. It costs a search per webhook with pending
 * deliveries, however long their backlogs and however many webhooks are idle.
 * Neither database skips through an index by itself: SQLite's skip-scan needs
 * statistics it rarely has, PostgreSQL has none.
 */
import type { DialectAdapter } from "../dialect/adapter.js";

/** SQLite's name for the partial index of pending deliveries by webhook and due time (migration 0002). */
export const DELIVERY_DUE = "delivery_due";

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
