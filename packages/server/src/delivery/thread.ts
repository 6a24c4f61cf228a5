/**
 * The dispatcher on a thread of its own, for the embedded server.
 *
 * With SQLite, `serve --role all` is one process: the API and the dispatcher
 * shared one event loop, so one core did all the work while the other idled,
 * and a burst of deliveries delayed API answers (and the other way round).
 * Here the dispatcher runs in a worker thread:
 *
 * - Claims and completion writes: the thread asks this thread to run them
 *   on its connection (store/queue/delivery-queue.ts), one message per
 *   batch. better-sqlite3 runs a statement on the calling thread, so a claim
 *   run on the sending thread held up every response it was waiting for
 *   (the thread's loop lagged 2–6 ms at p90). Its other statements (next
 *   due time, heartbeat, breaker changes, releases, operational events) use
 *   a connection of its own, whose commits are flushed without waiting.
 * - Commits: the two connections share the write-ahead log's commit counters
 *   (`SqliteShared`), so nothing either thread sends or answers rests on a
 *   commit that is not on disk yet, whichever thread made it.
 * - Writes: the two take turns in arrival order, waiting asynchronously
 *   (WriteTurns), not in SQLite's busy handler, which would put the waiting
 *   thread to sleep.
 * - Wake-ups: the API's commits signal this process's wake-up channel; the
 *   signal is passed on to the thread.
 * - Metrics: the thread's delivery metrics (plain counts, ops/delivery-metrics.ts)
 *   are fetched as text at scrape time and rendered in place of this thread's
 *   (unused) ones.
 * - Logs: the thread's log lines go through this thread's logger (same level,
 *   same redaction, same output).
 * - Failure: if the thread dies or its storage fails, the process exits 1, as
 *   it would with the dispatcher in-process; its leases expire and a restart
 *   takes them back.
 * - Shutdown: `stop` asks the thread to stop as the in-process dispatcher
 *   would (finish within the grace period, release what is left) and waits
 *   for it to exit.
 */
import { Worker } from "node:worker_threads";
import type { FastifyBaseLogger } from "fastify";
import type { Config } from "../config/load.js";
import type { Metrics } from "../ops/metrics.js";
import type { SqliteShared } from "../store/dialect/adapter.js";
import {
  answerQueueCall,
  type DeliveryQueue,
  type QueueAnswer,
  type QueueCall,
} from "../store/queue/delivery-queue.js";
import type { Wakeup } from "../store/wakeup.js";
import { threadError } from "../thread-error.js";

/** What the thread starts from: copied to it, so plain data only. */
export interface ThreadData {
  readonly config: Config;
  readonly masterKey: string;
  readonly shared: SqliteShared;
}

export type ToThread =
  | { type: "wake" }
  | { type: "metrics"; id: number }
  | { type: "stop"; graceMs: number }
  | { type: "queue"; id: number; answer: QueueAnswer };

export type FromThread =
  | { type: "log"; level: LogLevel; fields: Record<string, unknown>; message: string | undefined }
  | { type: "queue"; id: number; call: QueueCall }
  | { type: "metrics"; id: number; text: string }
  | { type: "fatal"; message: string };

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace";

/** How long a scrape waits for the thread's metrics before rendering without them. */
const METRICS_TIMEOUT_MS = 2000;

export interface DispatcherThreadDeps {
  readonly config: Config;
  readonly masterKey: string;
  readonly shared: SqliteShared;
  /** The main thread's connection, where the thread's claims and completions run. */
  readonly queue: DeliveryQueue;
  readonly wakeup: Wakeup;
  readonly metrics: Metrics;
  readonly log: FastifyBaseLogger;
  /** The thread died or its storage failed: nothing it holds can be trusted to finish. */
  readonly onFatal: (error: Error) => void;
}

export class DispatcherThread {
  readonly #deps: DispatcherThreadDeps;
  #worker: Worker | undefined;
  #unsubscribe: (() => void) | undefined;
  #stopping = false;
  #stopped: Promise<void> | undefined;
  #nextRequest = 0;
  readonly #requests = new Map<number, (text: string) => void>();

  constructor(deps: DispatcherThreadDeps) {
    this.#deps = deps;
  }

  start(): void {
    if (this.#worker) return;
    const { config, masterKey, shared, wakeup, metrics, log } = this.#deps;
    const workerData: ThreadData = { config, masterKey, shared };
    const worker = new Worker(new URL("./thread-main.js", import.meta.url), {
      workerData,
      name: "carehooks-dispatcher",
    });
    this.#worker = worker;
    worker.on("message", (message: FromThread) => this.#receive(message));
    worker.on("error", (error) => this.#fatal(threadError(error, "the dispatcher thread")));
    const exited = new Promise<number>((resolve) => worker.once("exit", resolve));
    this.#stopped = exited.then((code) => {
      this.#unsubscribe?.();
      if (!this.#stopping || code !== 0) this.#fatal(new Error(`the dispatcher thread exited (code ${code})`));
    });
    this.#unsubscribe = wakeup.subscribe(() => worker.postMessage({ type: "wake" } satisfies ToThread));
    metrics.deliveryFrom(() => this.#metrics());
    log.debug("dispatcher thread started");
  }

  /** Stops claiming, lets in-flight attempts finish within graceMs, releases the rest; resolves when the thread is gone. */
  async stop(graceMs: number): Promise<void> {
    if (!this.#worker || this.#stopping) return this.#stopped;
    this.#stopping = true;
    this.#worker.postMessage({ type: "stop", graceMs } satisfies ToThread);
    await this.#stopped;
  }

  #receive(message: FromThread): void {
    switch (message.type) {
      case "log":
        this.#deps.log[message.level](message.fields, message.message);
        return;
      case "queue":
        void answerQueueCall(this.#deps.queue, message.call).then((answer) =>
          this.#worker?.postMessage({ type: "queue", id: message.id, answer } satisfies ToThread),
        );
        return;
      case "metrics":
        this.#requests.get(message.id)?.(message.text);
        this.#requests.delete(message.id);
        return;
      case "fatal":
        this.#fatal(new Error(message.message));
        return;
    }
  }

  #metrics(): Promise<string> {
    const worker = this.#worker;
    if (!worker || this.#stopping) return Promise.resolve("");
    const id = this.#nextRequest++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#requests.delete(id);
        this.#deps.log.warn("the dispatcher thread did not answer for /metrics in time");
        resolve("");
      }, METRICS_TIMEOUT_MS);
      this.#requests.set(id, (text) => {
        clearTimeout(timer);
        resolve(text);
      });
      worker.postMessage({ type: "metrics", id } satisfies ToThread);
    });
  }

  #fatal(error: Error): void {
    this.#deps.log.fatal({ err: error }, "dispatcher thread failed");
    this.#deps.onFatal(error);
  }
}
