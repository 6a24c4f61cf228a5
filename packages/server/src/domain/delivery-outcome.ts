/**
 * What one attempt's result means for its delivery. Success is any 2xx within
 * the timeout; 410 Gone disables the subscription; everything else (3xx
 * included: redirects are never followed) is retried on the schedule until it
 * runs out.
 */
import { nextRetry, parseRetryAfter } from "./retry-schedule.js";

/** The part of a send result this decision needs. */
export type AttemptResult =
  | { readonly kind: "response"; readonly status: number; readonly headers: Readonly<Record<string, string>> }
  | { readonly kind: "error"; readonly error: string; readonly message: string };

export type DeliveryOutcome =
  | { readonly kind: "succeeded" }
  | { readonly kind: "retry"; readonly at: number; readonly reason: string }
  | { readonly kind: "failed"; readonly reason: string }
  | { readonly kind: "gone"; readonly reason: string };

export interface OutcomeContext {
  readonly now: number;
  readonly schedule: readonly number[];
  /** Attempts made in this round, the one just made included. */
  readonly attemptsInRound: number;
  readonly random: () => number;
}

export function describeResult(result: AttemptResult): string {
  return result.kind === "response" ? `HTTP ${result.status}` : `${result.error}: ${result.message}`;
}

export function outcomeOf(result: AttemptResult, context: OutcomeContext): DeliveryOutcome {
  if (result.kind === "response" && result.status >= 200 && result.status < 300) return { kind: "succeeded" };
  const reason = describeResult(result);
  if (result.kind === "response" && result.status === 410)
    return { kind: "gone", reason: "the endpoint answered 410 Gone" };
  const honoursRetryAfter = result.kind === "response" && (result.status === 429 || result.status === 503);
  const retryAfter = honoursRetryAfter ? parseRetryAfter(result.headers["retry-after"], context.now) : undefined;
  const decision = nextRetry(context.schedule, context.attemptsInRound, context.random, retryAfter);
  if (decision.kind === "exhausted") {
    return { kind: "failed", reason: `${reason}; gave up after ${context.attemptsInRound} attempts` };
  }
  return { kind: "retry", at: context.now + decision.delayMs, reason };
}
