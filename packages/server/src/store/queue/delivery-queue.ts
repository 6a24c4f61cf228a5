/**
 * The two statements a dispatcher runs for every delivery, claim and
 * complete, behind one small interface, so where they run is a choice of the
 * wiring, not of the dispatcher:
 * - `directQueue`: on the dispatcher's own connection (PostgreSQL workers,
 *   an in-process dispatcher).
 * - the embedded server's dispatcher thread hands them to the main thread's
 *   connection (delivery/thread.ts): better-sqlite3 runs a statement on the
 *   calling thread, so a claim or a completion write run on the sending
 *   thread stops every response it is waiting for.
 */
import { retryAborted } from "../aborts.js";
import type { DialectAdapter } from "../dialect/adapter.js";
import { type ClaimLimits, type ClaimResult, claimBatch } from "./claim.js";
import { type Completion, type CompletionResult, completeBatch } from "./complete.js";

export interface DeliveryQueue {
  claim(limits: ClaimLimits): Promise<ClaimResult>;
  complete(completions: readonly Completion[]): Promise<CompletionResult>;
}

export function directQueue(adapter: DialectAdapter): DeliveryQueue {
  return {
    // Each is one statement or transaction, fenced by its lease tokens: safe to run again.
    claim: (limits) => retryAborted(adapter, () => claimBatch(adapter, limits)),
    complete: (completions) => retryAborted(adapter, () => completeBatch(adapter, completions)),
  };
}

/** A queue call passed between threads: what to run, and its answer. */
export type QueueCall =
  | { readonly op: "claim"; readonly limits: ClaimLimits }
  | { readonly op: "complete"; readonly completions: readonly Completion[] };

export type QueueAnswer =
  | { readonly ok: true; readonly result: ClaimResult | CompletionResult }
  | { readonly ok: false; readonly error: { readonly message: string; readonly code?: string } };

/** Runs a call on `queue` and answers it as plain data (an error keeps its message and code). */
export async function answerQueueCall(queue: DeliveryQueue, call: QueueCall): Promise<QueueAnswer> {
  try {
    const result = call.op === "claim" ? await queue.claim(call.limits) : await queue.complete(call.completions);
    return { ok: true, result };
  } catch (error) {
    const { message, code } = error as { message?: unknown; code?: unknown };
    return {
      ok: false,
      error: { message: String(message ?? error), ...(typeof code === "string" ? { code } : {}) },
    };
  }
}

/** The error an answer carries, with its code, so `isUnavailable` reads it as it would the original. */
export function errorOfAnswer(error: { readonly message: string; readonly code?: string }): Error {
  return Object.assign(new Error(error.message), error.code === undefined ? {} : { code: error.code });
}
