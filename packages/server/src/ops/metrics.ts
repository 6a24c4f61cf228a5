import type { StorageStats } from "../store/dialect/adapter.js";

/**
 * Prometheus metrics without a dependency: counters, gauges and histograms
 * with labels, rendered in the text exposition format at GET /metrics.
 */

type Labels = Readonly<Record<string, string>>;

const key = (labels: Labels): string =>
  Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => `${name}="${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`)
    .join(",");

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  readonly #values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    this.#values.set(k, (this.#values.get(k) ?? 0) + by);
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [k, value] of this.#values) lines.push(`${this.name}${k ? `{${k}}` : ""} ${value}`);
    return lines.join("\n");
  }
}

export class Gauge implements Metric {
  readonly #values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
    /** Called at scrape time to refresh the values. */
    readonly collect?: (gauge: Gauge) => Promise<void> | void,
  ) {}
  set(value: number, labels: Labels = {}): void {
    this.#values.set(key(labels), value);
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const [k, value] of this.#values) lines.push(`${this.name}${k ? `{${k}}` : ""} ${value}`);
    return lines.join("\n");
  }
}

export class Histogram implements Metric {
  readonly #series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {}
  observe(value: number, labels: Labels = {}): void {
    const k = key(labels);
    let series = this.#series.get(k);
    if (!series) {
      series = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(k, series);
    }
    this.buckets.forEach((bound, index) => {
      if (value <= bound) (series.counts[index] as number) += 1;
    });
    series.sum += value;
    series.count += 1;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [k, series] of this.#series) {
      const prefix = k ? `${k},` : "";
      this.buckets.forEach((bound, index) => {
        lines.push(`${this.name}_bucket{${prefix}le="${bound}"} ${series.counts[index]}`);
      });
      lines.push(`${this.name}_bucket{${prefix}le="+Inf"} ${series.count}`);
      lines.push(`${this.name}_sum${k ? `{${k}}` : ""} ${series.sum}`);
      lines.push(`${this.name}_count${k ? `{${k}}` : ""} ${series.count}`);
    }
    return lines.join("\n");
  }
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Every metric carehooks exports; one registry per process. */
export class Metrics {
  readonly httpRequests = new Counter(
    "carehooks_http_requests_total",
    "API requests answered, by method, route and status.",
  );
  readonly httpDuration = new Histogram("carehooks_http_request_duration_seconds", "API request latency.", SECONDS);
  readonly attempts = new Counter(
    "carehooks_delivery_attempts_total",
    "Delivery attempts made by this process, by outcome.",
  );
  readonly attemptDuration = new Histogram(
    "carehooks_delivery_attempt_duration_seconds",
    "Time from sending to the receiver's answer.",
    SECONDS,
  );
  readonly eventsRecorded = new Counter("carehooks_events_total", "Events written by this process, by event name.");
  readonly inFlight = new Gauge("carehooks_dispatcher_in_flight", "Deliveries this process is sending now.");
  readonly queue: Gauge;
  readonly #all: Metric[];
  /** The dispatcher's own metrics: rendered by the thread that runs it. */
  readonly #delivery: Metric[] = [this.attempts, this.attemptDuration, this.inFlight];
  /** Renders the dispatcher's metrics when it runs on another thread. */
  #deliveryElsewhere: (() => Promise<string>) | undefined;

  /** `storage`: the embedded database's commit, fsync and checkpoint counts, where carehooks does those itself. */
  constructor(queue: (gauge: Gauge) => Promise<void>, storage?: () => StorageStats) {
    this.queue = new Gauge(
      "carehooks_queue",
      "Deliveries waiting (pending), being sent (in_flight), and the oldest due age in seconds (oldest_due_seconds).",
      queue,
    );
    this.#all = [
      this.httpRequests,
      this.httpDuration,
      this.attempts,
      this.attemptDuration,
      this.eventsRecorded,
      this.inFlight,
      this.queue,
    ];
    if (storage) {
      this.#all.push(
        new Gauge(
          "carehooks_sqlite_wal",
          "Commits, write-ahead-log fsyncs and background checkpoints since start (commits per fsync = how many commits shared one), and the pages in the log at the last checkpoint (log_frames).",
          (gauge) => {
            const stats = storage();
            const kinds = [
              ["commits", stats.commits],
              ["fsyncs", stats.flushes],
              ["checkpoints", stats.checkpoints],
              ["log_frames", stats.logFrames],
            ] as const;
            for (const [kind, value] of kinds) if (value !== undefined) gauge.set(value, { kind });
          },
        ),
      );
    }
  }

  /**
   * The dispatcher runs elsewhere (its own thread): its metrics are what
   * `source` renders there, not this registry's, which stay unused.
   */
  deliveryFrom(source: () => Promise<string>): void {
    this.#deliveryElsewhere = source;
  }

  /** The dispatcher's metrics alone, for the thread that runs it to hand over. */
  renderDelivery(): string {
    return `${this.#delivery.map((metric) => metric.render()).join("\n")}\n`;
  }

  async render(): Promise<string> {
    const elsewhere = this.#deliveryElsewhere;
    const local = elsewhere ? this.#all.filter((metric) => !this.#delivery.includes(metric)) : this.#all;
    for (const metric of local) if (metric instanceof Gauge) await metric.collect?.(metric);
    const text = `${local.map((metric) => metric.render()).join("\n")}\n`;
    return elsewhere ? text + (await elsewhere()) : text;
  }
}
