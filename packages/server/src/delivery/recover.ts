/**
 * Runs a recover task: re-queues a subscription's failed and cancelled
 * deliveries from a time range, in batches, recording progress on the task so
 * callers can watch it. A task a stopped process left behind is taken over at
 * start once its progress is stale; a live runner's task is left alone.
 */
import type { FastifyBaseLogger } from "fastify";
import { requeueFailed } from "../store/deliveries.js";
import type { Db } from "../store/open.js";
import { claimTask, type TaskRow, updateTask } from "../store/tasks.js";
import type { Wakeup } from "../store/wakeup.js";

const BATCH = 500;
/** A running task whose runner reported nothing for this long is taken over. */
export const TASK_STALE_MS = 60_000;

export interface RecoverParams {
  readonly since: number;
  readonly until: number;
}

export async function runRecoverTask(db: Db, wakeup: Wakeup, log: FastifyBaseLogger, task: TaskRow): Promise<void> {
  const params = JSON.parse(task.params) as RecoverParams;
  let done = task.done;
  try {
    const started = Date.now();
    // Another process may be running it already: only one takes it.
    if (!(await claimTask(db, task.id, started - TASK_STALE_MS, started))) return;
    for (;;) {
      const now = Date.now();
      const moved = await db.transaction().execute(async (trx) => {
        const count = await requeueFailed(trx, task.subscription_id as string, params, BATCH, now);
        await updateTask(trx, task.id, { done: done + count, updated_at: now });
        return count;
      });
      done += moved;
      if (moved > 0) wakeup.notify();
      if (moved < BATCH) break;
    }
    const now = Date.now();
    await updateTask(db, task.id, {
      state: "succeeded",
      done,
      total: Math.max(done, task.total),
      updated_at: now,
      finished_at: now,
    });
  } catch (error) {
    log.error({ err: error, task: task.id }, "recover task failed");
    const now = Date.now();
    await updateTask(db, task.id, {
      state: "failed",
      error: (error as Error).message,
      updated_at: now,
      finished_at: now,
    }).catch(() => {});
  }
}
