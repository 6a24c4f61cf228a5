/**
 * A subscription's health, changed by each attempt's outcome.
 *
 * - active: deliveries flow, up to the per-endpoint cap.
 * - degraded: after BREAKER_THRESHOLD consecutive failures; one probe at a
 *   time, no earlier than probe_at, spaced by the retry schedule. Deliveries
 *   held back meanwhile spend no attempts. A success makes it active again.
 * - disabled: after DISABLE_AFTER of nothing but failures, on 410 Gone, or by
 *   hand; its pending deliveries are cancelled. Only `enable` brings it back.
 */
import { nextRetry } from "./retry-schedule.js";
import { isoTime } from "./time.js";

export type SubscriptionState = "active" | "degraded" | "disabled";

export interface Health {
  readonly state: SubscriptionState;
  readonly state_reason: string | null;
  readonly state_changed_at: number;
  readonly failure_streak: number;
  readonly failing_since: number | null;
  readonly probe_at: number | null;
}

export interface BreakerSettings {
  readonly threshold: number;
  readonly disableAfterMs: number;
  readonly schedule: readonly number[];
  readonly random: () => number;
}

function withState(health: Health, state: SubscriptionState, reason: string | null, now: number): Health {
  if (health.state === state) return { ...health, state_reason: reason ?? health.state_reason };
  return { ...health, state, state_reason: reason, state_changed_at: now };
}

export function afterSuccess(health: Health, now: number): Health {
  if (health.state === "disabled") return { ...health, failure_streak: 0, failing_since: null, probe_at: null };
  return {
    ...withState(health, "active", null, now),
    state_reason: null,
    failure_streak: 0,
    failing_since: null,
    probe_at: null,
  };
}

export function afterFailure(health: Health, now: number, settings: BreakerSettings): Health {
  const streak = health.failure_streak + 1;
  const failingSince = health.failing_since ?? now;
  const failing = { ...health, failure_streak: streak, failing_since: failingSince };
  if (health.state === "disabled") return failing;
  if (now - failingSince >= settings.disableAfterMs) {
    return {
      ...withState(failing, "disabled", `failing since ${isoTime(failingSince)} (${streak} consecutive failures)`, now),
      probe_at: null,
    };
  }
  if (streak < settings.threshold) return failing;
  const step = Math.min(streak - settings.threshold + 1, settings.schedule.length);
  const decision = nextRetry(settings.schedule, step, settings.random);
  const delay = decision.kind === "retry" ? decision.delayMs : (settings.schedule.at(-1) ?? 0);
  return { ...withState(failing, "degraded", `${streak} consecutive failures`, now), probe_at: now + delay };
}

export function afterGone(health: Health, now: number, reason: string): Health {
  return { ...withState(health, "disabled", reason, now), probe_at: null };
}
