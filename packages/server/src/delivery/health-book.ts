/**
 * Each subscription's breaker state, kept in memory by the worker that sends
 * to it (domain/breaker.ts decides; this keeps score).
 *
 * A healthy subscription's row is never written after a delivery: only a
 * change of state (active → degraded → disabled, back to active) or of a
 * degraded subscription's probe time is, by a conditional update that fails
 * when someone else changed the row since it was read. The failure streak is
 * this worker's own count between such changes.
 *
 * Several workers: each counts the failures it sees. The first to cross the
 * threshold writes `degraded`; the others read the new state with their next
 * claim from that subscription and follow it (a write based on an older read
 * is refused, and the entry is dropped to be read again). A success at any
 * worker makes it active again; its state is the row's, at most one claim
 * behind.
 */

import { BoundedMap } from "../domain/bounded-map.js";
import { afterFailure, afterGone, afterSuccess, type BreakerSettings, type Health } from "../domain/breaker.js";
import type { DeliveryOutcome } from "../domain/delivery-outcome.js";

/** Subscriptions whose state a worker remembers; one seen again after eviction is read from its next claim. */
const CAPACITY = 100_000;

export interface HealthChange {
  readonly subscriptionId: string;
  readonly before: Health;
  readonly after: Health;
}

export class HealthBook {
  readonly #settings: BreakerSettings;
  readonly #known = new BoundedMap<string, Health>(CAPACITY);

  constructor(settings: BreakerSettings) {
    this.#settings = settings;
  }

  /** A claim read this row: adopt it unless it is the state this worker already follows. */
  seen(subscriptionId: string, row: Health): void {
    const known = this.#known.get(subscriptionId);
    if (known && known.state === row.state && known.state_changed_at === row.state_changed_at) return;
    this.#known.set(subscriptionId, {
      state: row.state,
      state_reason: row.state_reason,
      state_changed_at: Number(row.state_changed_at),
      failure_streak: Number(row.failure_streak),
      failing_since: row.failing_since === null ? null : Number(row.failing_since),
      probe_at: row.probe_at === null ? null : Number(row.probe_at),
    });
  }

  /** Counts an outcome; returns the change to write, if the state or the probe time changed. */
  record(subscriptionId: string, outcome: DeliveryOutcome, now: number): HealthChange | undefined {
    const before = this.#known.get(subscriptionId);
    if (!before) return undefined;
    const after =
      outcome.kind === "succeeded"
        ? afterSuccess(before, now)
        : outcome.kind === "gone"
          ? afterGone(before, now, outcome.reason)
          : afterFailure(before, now, this.#settings);
    this.#known.set(subscriptionId, after);
    const changed = after.state !== before.state || after.probe_at !== before.probe_at;
    return changed ? { subscriptionId, before, after } : undefined;
  }

  /** The state this worker follows for a subscription; undefined when it has not read one. */
  state(subscriptionId: string): Health["state"] | undefined {
    return this.#known.get(subscriptionId)?.state;
  }

  /** The row changed under us: read it again with the next claim. */
  forget(subscriptionId: string): void {
    this.#known.delete(subscriptionId);
  }
}
