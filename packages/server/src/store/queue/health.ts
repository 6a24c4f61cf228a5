/**
 * Writes a subscription's breaker state, only when it changed (the dispatcher
 * keeps it in memory: delivery/health-book.ts), and only if nobody else
 * changed it since this worker read it: the update is conditional on the
 * state and its change time as read. A subscription that becomes disabled has
 * its pending deliveries cancelled in the same transaction.
 */
import type { Health } from "../../domain/breaker.js";
import { notifySubscriptionsChanged } from "../changes.js";
import type { DialectAdapter } from "../dialect/adapter.js";
import { changedBy, numbered } from "./raw.js";

const WRITE = `
UPDATE subscription
SET state = ?, state_reason = ?, state_changed_at = ?, failure_streak = ?, failing_since = ?, probe_at = ?
WHERE id = ? AND state = ? AND state_changed_at = ? AND deleted_at IS NULL`;

const CANCEL_PENDING = `
UPDATE delivery SET status = 'cancelled', next_attempt_at = NULL, last_error = ?, updated_at = ?
WHERE subscription_id = ? AND status = 'pending'`;

/** True when written; false when the row changed meanwhile (or was deleted): read it again. */
export async function writeHealth(
  adapter: DialectAdapter,
  subscriptionId: string,
  before: Health,
  after: Health,
  now: number,
): Promise<boolean> {
  const pg = adapter.name === "postgres";
  return adapter.db.transaction().execute(async (trx) => {
    const written = await changedBy(trx, pg ? numbered(WRITE) : WRITE, [
      after.state,
      after.state_reason,
      after.state_changed_at,
      after.failure_streak,
      after.failing_since,
      after.probe_at,
      subscriptionId,
      before.state,
      before.state_changed_at,
    ]);
    if (written === 0) return false;
    if (after.state === "disabled" && before.state !== "disabled") {
      await changedBy(trx, pg ? numbered(CANCEL_PENDING) : CANCEL_PENDING, [
        `subscription disabled: ${after.state_reason}`,
        now,
        subscriptionId,
      ]);
      // Every API process stops caching it as a webhook to write deliveries for.
      await notifySubscriptionsChanged(adapter, trx, [subscriptionId]);
    }
    return true;
  });
}
