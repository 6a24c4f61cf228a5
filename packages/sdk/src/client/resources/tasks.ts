/** Background tasks, such as a recover. */
import { sleep } from "../backoff.js";
import type { Task } from "../models.js";
import type { CallOptions, Transport } from "../transport.js";
import { WEBHOOK_BASE } from "./webhooks.js";

export interface WaitOptions {
  /** Between polls; default 500 ms. */
  readonly intervalMs?: number;
  /** Give up after this long; default 5 minutes. */
  readonly timeoutMs?: number;
  /** Called with every polled state (for a progress bar: `done` of `total`). */
  readonly onProgress?: (task: Task) => void;
  readonly signal?: AbortSignal;
}

export class TasksResource {
  readonly #http: Transport;

  constructor(http: Transport) {
    this.#http = http;
  }

  async get(id: string, options: CallOptions = {}): Promise<Task> {
    const answer = await this.#http.request<{ data: Task }>({
      method: "GET",
      path: `${WEBHOOK_BASE}/tasks/${encodeURIComponent(id)}`,
      ...options,
    });
    return answer.data;
  }

  /** Polls a task until it has `succeeded` or `failed`, and answers its last state. */
  async wait(id: string, options: WaitOptions = {}): Promise<Task> {
    const deadline = Date.now() + (options.timeoutMs ?? 300_000);
    const call = options.signal ? { signal: options.signal } : {};
    for (;;) {
      const task = await this.get(id, call);
      options.onProgress?.(task);
      if (task.state === "succeeded" || task.state === "failed") return task;
      if (Date.now() >= deadline) throw new Error(`task ${id} is still ${task.state} after the wait's timeout`);
      await sleep(options.intervalMs ?? 500, options.signal);
    }
  }
}
