import type { StorageStats } from "../store/dialect/adapter.js";
import { type Labels, type Series, SeriesTable } from "./metric-series.js";

/**
 * Prometheus metrics without a dependency: counters, gauges and histograms
 * with labels, rendered in the text exposition format at GET /metrics.
 */

interface Metric {
  render(): string;
}

/** `name{labels}` of one sample line, or bare `name` without labels. */
const sample = (name: string, labels: string): string => (labels ? `${name}{${labels}}` : name);

interface Value extends Series {
  value: number;
}

const newValue = (labels: string): Value => ({ labels, value: 0 });

/** A counter's or gauge's exposition: one sample line per series. */
function renderValues(name: string, help: string, type: string, series: readonly Value[]): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  for (const { labels, value } of series) lines.push(`${sample(name, labels)} ${value}`);
  return lines.join("\n");
}

/** `L`: the label names every observation gives (none by default). */
export class Counter<L extends string = never> implements Metric {
  readonly #series: SeriesTable<L, Value>;
  constructor(
    readonly name: string,
    readonly help: string,
    labelNames: readonly L[] = [],
  ) {
    this.#series = new SeriesTable(labelNames, newValue);
  }
  inc(labels: Labels<L> = {} as Labels<L>, by = 1): void {
    this.#series.get(labels).value += by;
  }
  render(): string {
    return renderValues(this.name, this.help, "counter", this.#series.all());
  }
}

export class Gauge<L extends string = never> implements Metric {
  readonly #series: SeriesTable<L, Value>;
  constructor(
    readonly name: string,
    readonly help: string,
    labelNames: readonly L[] = [],
    /** Called at scrape time to refresh the values. */
    readonly collect?: (gauge: Gauge<L>) => Promise<void> | void,
  ) {
    this.#series = new SeriesTable(labelNames, newValue);
  }
  set(value: number, labels: Labels<L> = {} as Labels<L>): void {
    this.#series.get(labels).value = value;
  }
  render(): string {
    return renderValues(this.name, this.help, "gauge", this.#series.all());
  }
}

interface Distribution extends Series {
  /** Observations per bucket, each counted in the first bucket that holds it (cumulated when rendered). */
  readonly counts: number[];
  sum: number;
  count: number;
}

export class Histogram<L extends string = never> implements Metric {
  readonly #series: SeriesTable<L, Distribution>;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
    labelNames: readonly L[] = [],
  ) {
    this.#series = new SeriesTable(labelNames, (labels) => ({
      labels,
      counts: buckets.map(() => 0),
      sum: 0,
      count: 0,
    }));
  }
  observe(value: number, labels: Labels<L> = {} as Labels<L>): void {
    const series = this.#series.get(labels);
    const buckets = this.buckets;
    const counts = series.counts;
    for (let index = 0; index < buckets.length; index += 1) {
      if (value <= (buckets[index] as number)) {
        (counts[index] as number) += 1;
        break;
      }
    }
    series.sum += value;
    series.count += 1;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const series of this.#series.all()) {
      const prefix = series.labels ? `${series.labels},` : "";
      let cumulative = 0;
      this.buckets.forEach((bound, index) => {
        cumulative += series.counts[index] as number;
        lines.push(`${this.name}_bucket{${prefix}le="${bound}"} ${cumulative}`);
      });
      lines.push(`${this.name}_bucket{${prefix}le="+Inf"} ${series.count}`);
      lines.push(`${sample(`${this.name}_sum`, series.labels)} ${series.sum}`);
      lines.push(`${sample(`${this.name}_count`, series.labels)} ${series.count}`);
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
    ["method", "route", "status"],
  );
  readonly httpDuration = new Histogram("carehooks_http_request_duration_seconds", "API request latency.", SECONDS, [
    "route",
  ]);
  readonly attempts = new Counter(
    "carehooks_delivery_attempts_total",
    "Delivery attempts made by this process, by outcome.",
    ["outcome"],
  );
  readonly attemptDuration = new Histogram(
    "carehooks_delivery_attempt_duration_seconds",
    "Time from sending to the receiver's answer.",
    SECONDS,
  );
  readonly eventsRecorded = new Counter("carehooks_events_total", "Events written by this process, by event name.", [
    "name",
  ]);
  readonly inFlight = new Gauge("carehooks_dispatcher_in_flight", "Deliveries this process is sending now.");
  readonly leasesReturned = new Counter(
    "carehooks_leases_returned_total",
    "Deliveries this process returned to the queue at a heartbeat: held by a worker that stopped beating, or whose lease expired.",
  );
  readonly breakerChanges = new Counter(
    "carehooks_breaker_transitions_total",
    "Subscription state changes this process wrote, by the state entered.",
    ["state"],
  );
  readonly queue: Gauge<"state">;
  readonly #all: Metric[];
  /** The dispatcher's own metrics: rendered by the thread that runs it. */
  readonly #delivery: Metric[] = [
    this.attempts,
    this.attemptDuration,
    this.inFlight,
    this.leasesReturned,
    this.breakerChanges,
  ];
  /** Renders the dispatcher's metrics when it runs on another thread. */
  #deliveryElsewhere: (() => Promise<string>) | undefined;

  /** `storage`: the embedded database's commit, fsync and checkpoint counts, where carehooks does those itself. */
  constructor(queue: (gauge: Gauge<"state">) => Promise<void>, storage?: () => StorageStats) {
    this.queue = new Gauge(
      "carehooks_queue",
      "Deliveries waiting (pending), being sent (in_flight), and the oldest due age in seconds (oldest_due_seconds).",
      ["state"],
      queue,
    );
    this.#all = [
      this.httpRequests,
      this.httpDuration,
      this.attempts,
      this.attemptDuration,
      this.eventsRecorded,
      this.inFlight,
      this.leasesReturned,
      this.breakerChanges,
      this.queue,
    ];
    if (storage) {
      this.#all.push(
        new Gauge(
          "carehooks_sqlite_wal",
          "Commits, write-ahead-log fsyncs and background checkpoints since start (commits per fsync = how many commits shared one), and the pages in the log at the last checkpoint (log_frames).",
          ["kind"],
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
