/**
 * Failed attempts, logged at warn level without flooding: at most one line
 * per subscription per interval (CAREHOOKS_FAILURE_LOG_INTERVAL), which
 * counts the failures it stood for. A dead endpoint with a backlog fails
 * thousands of times a minute; an operator needs to see that it does, and
 * why, not every attempt (each is in the delivery log: `deliveries show`).
 */
import type { FastifyBaseLogger } from "fastify";

/** Subscriptions remembered at once; past this, the oldest are forgotten (their next failure logs at once). */
const REMEMBERED = 10_000;

export interface FailedAttempt {
  readonly subscriptionId: string;
  readonly deliveryId: string;
  readonly attempt: number;
  readonly status: number | null;
  readonly error: string | null;
  /** What happens next: retried, failed, gone. */
  readonly outcome: string;
}

export class FailureLog {
  readonly #log: FastifyBaseLogger;
  readonly #intervalMs: number;
  /** Per subscription: when it last logged, and the failures since then that did not. */
  readonly #last = new Map<string, { at: number; held: number }>();

  constructor(log: FastifyBaseLogger, intervalMs: number) {
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  failed(attempt: FailedAttempt, now = Date.now()): void {
    const last = this.#last.get(attempt.subscriptionId);
    if (last && now - last.at < this.#intervalMs) {
      last.held++;
      return;
    }
    this.#last.delete(attempt.subscriptionId);
    if (this.#last.size >= REMEMBERED) this.#last.delete(this.#last.keys().next().value as string);
    this.#last.set(attempt.subscriptionId, { at: now, held: 0 });
    this.#log.warn(
      {
        subscription: attempt.subscriptionId,
        delivery: attempt.deliveryId,
        attempt: attempt.attempt,
        status: attempt.status,
        error: attempt.error,
        outcome: attempt.outcome,
        ...(last?.held ? { notLogged: last.held } : {}),
      },
      last?.held
        ? `delivery attempt failed (and ${last.held} more for this webhook since the last such line)`
        : "delivery attempt failed",
    );
  }
}
