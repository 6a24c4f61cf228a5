/**
 * A transaction PostgreSQL rolled back to break a deadlock or a serialization
 * conflict is run again from its start: nothing of it was kept, and the
 * database's own advice is to retry it. Such a deadlock is rare but real: a
 * switch to per-resource ordering keys a webhook's open deliveries in one
 * statement while a worker's completion moves some of the same rows in
 * another, each taking its rows in its own order.
 *
 * `work` must be a whole transaction, begun inside it, with nothing outside
 * the database done before its commit.
 */
import type { DialectAdapter } from "./dialect/adapter.js";

/** Runs after the first abort; a fourth abort in a row is the caller's error. */
export const CONFLICT_RETRIES = 3;
/** The first retry waits up to this (ms, at random, so that the two sides part); each next one twice as long. */
const FIRST_BACKOFF_MS = 10;

export async function retryConflicts<T>(
  adapter: DialectAdapter,
  work: () => Promise<T>,
  onRetry?: (error: unknown) => void,
): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await work();
    } catch (error) {
      if (retry >= CONFLICT_RETRIES || !adapter.isConflictAbort(error)) throw error;
      onRetry?.(error);
      const backoff = Math.random() * FIRST_BACKOFF_MS * 2 ** retry;
      await new Promise((resolve) => setTimeout(resolve, backoff));
    }
  }
}
