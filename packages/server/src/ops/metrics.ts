/**
 * Every metric carehooks exports at GET /metrics: the API's own (requests,
 * events, queue, storage) and the process's default ones on prom-client
 * registries, and the dispatcher's (DeliveryMetrics, plain counts, here or on
 * its thread).
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { StorageStats } from "../store/dialect/adapter.js";
import type { CreateBatchStats } from "../store/outbox-batch.js";
import { DeliveryMetrics, SECONDS } from "./delivery-metrics.js";
import { processRegistry } from "./process-metrics.js";

/** Sets the queue gauge's values at scrape time. */
export type QueueCollector = (gauge: Gauge<"state">) => Promise<void>;

/** One server's metrics: its own registry, so several servers in one process do not collide. */
export class Metrics {
  readonly #registry = new Registry();
  readonly #process = processRegistry();
  readonly httpRequests = new Counter({
    name: "carehooks_http_requests_total",
    help: "API requests answered, by method, route and status.",
    labelNames: ["method", "route", "status"] as const,
    registers: [this.#registry],
  });
  readonly httpDuration = new Histogram({
    name: "carehooks_http_request_duration_seconds",
    help: "API request latency.",
    buckets: SECONDS,
    labelNames: ["route"] as const,
    registers: [this.#registry],
  });
  readonly eventsRecorded = new Counter({
    name: "carehooks_events_total",
    help: "Events written by this process, by event name.",
    labelNames: ["name"] as const,
    registers: [this.#registry],
  });
  readonly writeRetries = new Counter({
    name: "carehooks_write_retries_total",
    help: "Re-runs of API writes the database rolled back to break a deadlock or a serialization failure.",
    registers: [this.#registry],
  });
  /** The in-process dispatcher's; rendered unless the dispatcher runs on a thread of its own. */
  readonly delivery = new DeliveryMetrics();
  /** Renders the dispatcher's metrics when it runs on another thread. */
  #deliveryElsewhere: (() => Promise<string>) | undefined;

  /**
   * `storage`: the embedded database's commit, fsync and checkpoint counts, where carehooks does those itself.
   * `createBatches`: creates written several at a time (store/outbox-batch.ts); given only
   * where creates are batched (an API process, CAREHOOKS_CREATE_BATCH above 1).
   */
  constructor(queue: QueueCollector, storage?: () => StorageStats, createBatches?: () => CreateBatchStats) {
    new Gauge({
      name: "carehooks_queue",
      help: "Deliveries waiting (pending), being sent (in_flight), and the oldest due age in seconds (oldest_due_seconds).",
      labelNames: ["state"] as const,
      registers: [this.#registry],
      collect() {
        return queue(this);
      },
    });
    if (storage) {
      this.#byKind(
        "carehooks_sqlite_wal",
        "Commits, write-ahead-log fsyncs and background checkpoints since start (commits per fsync = how many commits shared one), checkpoints that copied the whole log back so that it starts over (log_restarts), and the pages in the log at the last checkpoint (log_frames).",
        () => {
          const stats = storage();
          return [
            ["commits", stats.commits],
            ["fsyncs", stats.flushes],
            ["checkpoints", stats.checkpoints],
            ["log_restarts", stats.logRestarts],
            ["log_frames", stats.logFrames],
          ];
        },
      );
    }
    if (createBatches) {
      this.#byKind(
        "carehooks_create_batches",
        "Creates this process wrote outside a transaction since start, and the batches that wrote them, each one statement on PostgreSQL and one transaction on SQLite (creates ÷ batches is how full batches run, against CAREHOOKS_CREATE_BATCH).",
        () => {
          const { batches, creates } = createBatches();
          return [
            ["batches", batches],
            ["creates", creates],
          ];
        },
      );
    }
  }

  /** A gauge of counts by `kind`, read when scraped; a count that is undefined is left out. */
  #byKind(name: string, help: string, read: () => readonly (readonly [string, number | undefined])[]): void {
    new Gauge({
      name,
      help,
      labelNames: ["kind"] as const,
      registers: [this.#registry],
      collect() {
        for (const [kind, value] of read()) if (value !== undefined) this.set({ kind }, value);
      },
    });
  }

  /**
   * The dispatcher runs elsewhere (its own thread): its metrics are what
   * `source` renders there, in place of `delivery`, which stays unused.
   */
  deliveryFrom(source: () => Promise<string>): void {
    this.#deliveryElsewhere = source;
  }

  /** The Content-Type of what `render` returns. */
  get contentType(): string {
    return this.#registry.contentType;
  }

  /** The exposition text: each registry's metric families are their own, so none appears twice. */
  async render(): Promise<string> {
    const parts = await Promise.all([
      this.#registry.metrics(),
      this.#deliveryElsewhere ? this.#deliveryElsewhere() : this.delivery.render(),
      this.#process.metrics(),
    ]);
    return parts.filter((part) => part.trim() !== "").join("\n");
  }
}
