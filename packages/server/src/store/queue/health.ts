/**
 * Writes a subscription's breaker state, only when it changed (the dispatcher
 * keeps it in memory: delivery/health-book.ts), and only if nobody else
 * changed it since this worker read it: the update is conditional on the
 * state and its change time as read. A subscription that becomes disabled has
 * its pending deliveries cancelled in the same transaction, and a change of
 * state raises its operational event (webhook.degraded, .disabled,
 * .recovered) in it too.
 */
import type { Health } from "../../domain/breaker.js";
import { forgetChanges, notifySubscriptionsChanged } from "../changes.js";
import type { DialectAdapter } from "../dialect/adapter.js";
import { webhookStateChanged } from "../operational-events.js";
import { changedBy, numbered } from "./raw.js";

const WRITE = `
UPDATE subscription
SET state = ?, state_reason = ?, state_changed_at = ?, failure_streak = ?, failing_since = ?, probe_at = ?
WHERE id = ? AND state = ? AND state_changed_at = ? AND deleted_at IS NULL`;

const CANCEL_PENDING = `
UPDATE delivery SET status = 'cancelled', next_attempt_at = NULL, last_error = ?, updated_at = ?
WHERE subscription_id = ? AND status = 'pending'`;

export type HealthWrite =
  /** The row changed meanwhile (or was deleted): read it again. */
  | { readonly written: false }
  /** `deliveries`: how many the operational event of a state change created. */
  | { readonly written: true; readonly deliveries: number };

export async function writeHealth(
  adapter: DialectAdapter,
  subscriptionId: string,
  before: Health,
  after: Health,
  now: number,
): Promise<HealthWrite> {
  const pg = adapter.name === "postgres";
  let changed: string[] = [];
  const result = await adapter.db.transaction().execute(async (trx): Promise<HealthWrite> => {
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
    if (written === 0) return { written: false };
    if (after.state === "disabled" && before.state !== "disabled") {
      await changedBy(trx, pg ? numbered(CANCEL_PENDING) : CANCEL_PENDING, [
        `subscription disabled: ${after.state_reason}`,
        now,
        subscriptionId,
      ]);
      // Every API process stops caching it as a webhook to write deliveries for.
      changed = await notifySubscriptionsChanged(adapter, trx, [subscriptionId]);
    }
    const deliveries =
      after.state === before.state ? 0 : await webhookStateChanged(adapter, trx, subscriptionId, after);
    return { written: true, deliveries };
  });
  // This process's caches too, now: on SQLite the same connection's commit tells them nothing.
  forgetChanges(adapter, changed);
  return result;
}
