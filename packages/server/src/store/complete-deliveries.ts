/**
 * Records finished attempts, many per transaction. Each delivery changes only
 * while its lease token still matches: a worker whose lease was taken over
 * records its attempt and changes nothing else. Subscriptions are locked
 * before their deliveries, in id order, the same order claiming uses, so
 * concurrent workers cannot deadlock.
 */
import { type Selectable, sql } from "kysely";
import { afterFailure, afterGone, afterSuccess, type BreakerSettings, type Health } from "../domain/breaker.js";
import type { DeliveryOutcome } from "../domain/delivery-outcome.js";
import type { DialectAdapter } from "./dialect/adapter.js";
import type { Db } from "./open.js";
import { insertRows, perAdapter, prepare } from "./prepared.js";
import type { AttemptTable, DeliveryTable } from "./schema.js";

export interface Completion {
  readonly deliveryId: string;
  readonly subscriptionId: string;
  readonly leaseToken: string;
  readonly attempt: AttemptTable;
  readonly outcome: DeliveryOutcome;
  /**
   * The worker's clock when the outcome was decided. A retry's time is moved
   * onto the database's clock by the same offset: claims compare due times
   * with the database's clock, whatever the worker's clock says.
   */
  readonly decidedAt: number;
  readonly statusCode: number | null;
  readonly error: string | null;
}

export interface CompletionSummary {
  /** Completions whose lease was lost: only their attempt was recorded. */
  readonly fenced: number;
  /** Subscriptions that became disabled, their pending deliveries cancelled. */
  readonly disabled: string[];
  /** The database's clock that the completions were recorded at. */
  readonly now: number;
}

type DeliveryChange = Pick<
  Selectable<DeliveryTable>,
  | "status"
  | "attempts"
  | "next_attempt_at"
  | "last_status_code"
  | "last_error"
  | "lease_token"
  | "lease_expires_at"
  | "updated_at"
>;

/** What an attempt's outcome makes of its delivery; a retry for a stopped subscription is cancelled instead. */
function changeAfter(completion: Completion, stopped: boolean, now: number): DeliveryChange {
  const { outcome } = completion;
  const base = {
    attempts: completion.attempt.n,
    last_status_code: completion.statusCode,
    last_error: completion.error,
    lease_token: null,
    lease_expires_at: null,
    updated_at: now,
  };
  if (outcome.kind === "succeeded") return { ...base, status: "succeeded", next_attempt_at: null, last_error: null };
  if (outcome.kind === "retry" && stopped) {
    return { ...base, status: "cancelled", next_attempt_at: null, last_error: "subscription deleted or disabled" };
  }
  if (outcome.kind === "retry") {
    return { ...base, status: "pending", next_attempt_at: now + (outcome.at - completion.decidedAt) };
  }
  return { ...base, status: "failed", next_attempt_at: null, last_error: outcome.reason };
}

/** A healthy subscription's row is not rewritten after every success. */
function sameHealth(a: Health, b: Health): boolean {
  return (
    a.state === b.state &&
    a.state_reason === b.state_reason &&
    a.state_changed_at === b.state_changed_at &&
    a.failure_streak === b.failure_streak &&
    a.failing_since === b.failing_since &&
    a.probe_at === b.probe_at
  );
}

/** The statements every completion batch runs, prepared once per database. */
const statementsOf = perAdapter((adapter: DialectAdapter) => ({
  health: prepare((db, p: { ids: string[] }) =>
    adapter.lockRows(
      db
        .selectFrom("subscription")
        .select([
          "id",
          "state",
          "state_reason",
          "state_changed_at",
          "failure_streak",
          "failing_since",
          "probe_at",
          "deleted_at",
        ])
        .where("id", "in", p.ids)
        .orderBy("id"),
    ),
  ),
  // RETURNING names the deliveries whose lease still held.
  move: prepare(
    (db, p: Omit<DeliveryChange, "lease_token" | "lease_expires_at"> & { ids: string[]; heldLease: string }) =>
      db
        .updateTable("delivery")
        .set({
          status: p.status,
          attempts: p.attempts,
          next_attempt_at: p.next_attempt_at,
          last_status_code: p.last_status_code,
          last_error: p.last_error,
          lease_token: null,
          lease_expires_at: null,
          updated_at: p.updated_at,
        })
        .where("id", "in", p.ids)
        .where("lease_token", "=", p.heldLease)
        .returning("id"),
  ),
}));

/** Records completions in the caller's transaction. */
export async function completeWithin(
  adapter: DialectAdapter,
  trx: Db,
  completions: readonly Completion[],
  breaker: BreakerSettings,
): Promise<CompletionSummary> {
  const now = await adapter.now(trx);
  if (completions.length === 0) return { fenced: 0, disabled: [], now };
  const statements = statementsOf(adapter);
  const subscriptionIds = [...new Set(completions.map((c) => c.subscriptionId))].sort();
  const rows = await statements.health.all(trx, { ids: subscriptionIds });
  const health = new Map<string, Health>(rows.map((row) => [row.id, row]));
  const changed = new Set<string>();

  await insertRows(
    trx,
    "attempt",
    completions.map((c) => c.attempt),
  );

  // A retry for a subscription deleted or disabled meanwhile is not queued again.
  const stopped = new Set(
    rows.filter((row) => row.deleted_at !== null || row.state === "disabled").map((row) => row.id),
  );
  // Deliveries that change alike under the same lease are updated by one statement.
  const alike = new Map<string, { change: DeliveryChange; leaseToken: string; ids: string[] }>();
  for (const completion of completions) {
    const change = changeAfter(completion, stopped.has(completion.subscriptionId), now);
    const key = JSON.stringify([completion.leaseToken, change]);
    const group = alike.get(key) ?? { change, leaseToken: completion.leaseToken, ids: [] };
    group.ids.push(completion.deliveryId);
    alike.set(key, group);
  }
  const moved = new Set<string>();
  for (const { change, leaseToken, ids } of alike.values()) {
    const updated = await statements.move.all(trx, { ...change, ids, heldLease: leaseToken });
    for (const row of updated) moved.add(row.id);
  }

  let fenced = 0;
  for (const completion of completions) {
    const { outcome } = completion;
    if (!moved.has(completion.deliveryId)) {
      fenced += 1;
      continue;
    }
    const current = health.get(completion.subscriptionId);
    if (!current) continue;
    const next =
      outcome.kind === "succeeded"
        ? afterSuccess(current, now)
        : outcome.kind === "gone"
          ? afterGone(current, now, outcome.reason)
          : afterFailure(current, now, breaker);
    health.set(completion.subscriptionId, next);
    if (!sameHealth(current, next)) changed.add(completion.subscriptionId);
  }

  const disabled: string[] = [];
  for (const id of changed) {
    const next = health.get(id) as Health;
    await trx
      .updateTable("subscription")
      .set({
        state: next.state,
        state_reason: next.state_reason,
        state_changed_at: next.state_changed_at,
        failure_streak: next.failure_streak,
        failing_since: next.failing_since,
        probe_at: next.probe_at,
      })
      .where("id", "=", id)
      .execute();
    const before = rows.find((row) => row.id === id);
    if (next.state === "disabled" && before?.state !== "disabled") {
      disabled.push(id);
      await trx
        .updateTable("delivery")
        .set({
          status: "cancelled",
          next_attempt_at: null,
          last_error: `subscription disabled: ${next.state_reason}`,
          updated_at: now,
        })
        .where("subscription_id", "=", id)
        .where("status", "=", sql.lit<"pending">("pending"))
        .execute();
    }
  }
  return { fenced, disabled, now };
}
