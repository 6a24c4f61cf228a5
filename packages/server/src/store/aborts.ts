/**
 * A transaction PostgreSQL rolled back to break a deadlock (or a
 * serialization failure) is run again from its start: nothing of it was
 * kept, and the database's own advice is to retry it.
 *
 * Such deadlocks are rare but real. The in-flight count's triggers
 * (migrations/postgres/0010 and 0017) lock a subscription row after the statement
 * that changed its deliveries, so a claim or a completion holds delivery
 * rows and then asks for the subscription; writes that take both take them
 * in that order too (a switch to per-resource ordering keys the open
 * deliveries before it writes the webhook, http/subscriptions.ts), but two
 * statements that each lock several delivery rows still take them in their
 * own orders. Whichever side the database rolls back is run again: the
 * API's write (http/writes.ts) and the dispatcher's claim and completion
 * (queue/delivery-queue.ts).
 *
 * `work` must be a whole transaction (or one statement), begun inside it,
 * with nothing outside the database done before its commit.
 */
import type { DialectAdapter } from "./dialect/adapter.js";

/** Runs after the first abort; the fourth abort in a row is the caller's error. */
export const ABORT_RETRIES = 3;
/** The first retry waits up to this (ms, at random, so that the two sides part); each next one twice as long. */
const FIRST_BACKOFF_MS = 10;

export async function retryAborted<T>(
  adapter: DialectAdapter,
  work: () => Promise<T>,
  onRetry?: (error: unknown) => void,
): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await work();
    } catch (error) {
      if (retry >= ABORT_RETRIES || !adapter.isTransientAbort(error)) throw error;
      onRetry?.(error);
      const backoff = Math.random() * FIRST_BACKOFF_MS * 2 ** retry;
      await new Promise((resolve) => setTimeout(resolve, backoff));
    }
  }
}
