/**
 * The dispatcher's metrics, counted on whichever thread runs the dispatcher
 * (the API's, or a dispatcher thread of its own) and rendered from there at
 * scrape time.
 *
 * They are plain numbers, written out in Prometheus' text format when
 * scraped: an attempt adds to a count and a bucket, with no label set to
 * validate and hash as prom-client does on every call (about 8 µs an attempt
 * while a fresh process warms up, 0.5 µs warm). The in-flight gauge is read
 * from the dispatcher when scraped, not set at every attempt.
 */

/** Latency buckets in seconds, shared by the API's and the dispatcher's histograms. */
export const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

type Sample = readonly [labels: string, value: number];

/** One metric family in the text format: HELP, TYPE, then a line per sample. */
function family(name: string, type: string, help: string, samples: readonly Sample[], suffix = ""): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  for (const [labels, value] of samples) lines.push(`${name}${suffix}${labels} ${value}`);
  return lines.join("\n");
}

/** Samples of a counter labelled `label`, one per value seen (escaped as the format asks). */
function byLabel(label: string, counts: ReadonlyMap<string, number>): Sample[] {
  const escaped = (value: string) => value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
  return [...counts].map(([value, n]) => [`{${label}="${escaped(value)}"}`, n]);
}

/**
 * A histogram family: cumulative buckets by upper bound, +Inf, sum and count. `counts[i]`: the
 * observations over the bound before `bounds[i]` and at most it; the last, over every bound.
 */
function histogram(
  name: string,
  help: string,
  bounds: readonly number[],
  counts: readonly number[],
  sum: number,
): string {
  let cumulative = 0;
  const buckets: Sample[] = bounds.map((bound, i) => {
    cumulative += counts[i] as number;
    return [`{le="${bound}"}`, cumulative];
  });
  const count = counts.reduce((a, b) => a + b, 0);
  return [
    family(name, "histogram", help, [...buckets, ['{le="+Inf"}', count]], "_bucket"),
    `${name}_sum ${sum}`,
    `${name}_count ${count}`,
  ].join("\n");
}

function countOne(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

export class DeliveryMetrics {
  readonly #outcomes = new Map<string, number>();
  /** Attempts by duration: at most SECONDS[i] and over the bound before it; the last, over every bound. */
  readonly #durations = new Array<number>(SECONDS.length + 1).fill(0);
  #seconds = 0;
  #leasesReturned = 0;
  readonly #transitions = new Map<string, number>();
  /** Claim statements and the deliveries they leased; completion writes and the outcomes they carried. */
  readonly #batches = { claims: 0, claimed: 0, completions: 0, completed: 0 };
  #inFlight: () => number = () => 0;

  /** An attempt ended with `outcome` (a DeliveryOutcome kind) after `seconds`. */
  attempted(outcome: string, seconds: number): void {
    countOne(this.#outcomes, outcome);
    this.#seconds += seconds;
    let bucket = 0;
    while (bucket < SECONDS.length && seconds > (SECONDS[bucket] as number)) bucket += 1;
    this.#durations[bucket] = (this.#durations[bucket] as number) + 1;
  }

  /** Deliveries returned to the queue at a heartbeat. */
  leasesReturned(count: number): void {
    this.#leasesReturned += count;
  }

  /** A claim ran and leased `deliveries` (none, when nothing was due). */
  claimed(deliveries: number): void {
    this.#batches.claims += 1;
    this.#batches.claimed += deliveries;
  }

  /** A completion write carried `outcomes` (fenced ones included: their leases had been taken over). */
  completed(outcomes: number): void {
    this.#batches.completions += 1;
    this.#batches.completed += outcomes;
  }

  /** A subscription state change written, by the state entered. */
  breakerChanged(state: string): void {
    countOne(this.#transitions, state);
  }

  /** Where the in-flight gauge is read at scrape time. */
  inFlightFrom(source: () => number): void {
    this.#inFlight = source;
  }

  /** The exposition text of these metrics alone. */
  async render(): Promise<string> {
    return `${[
      family(
        "carehooks_delivery_attempts_total",
        "counter",
        "Delivery attempts made by this process, by outcome.",
        byLabel("outcome", this.#outcomes),
      ),
      histogram(
        "carehooks_delivery_attempt_duration_seconds",
        "Time from sending to the receiver's answer.",
        SECONDS,
        this.#durations,
        this.#seconds,
      ),
      family("carehooks_dispatcher_in_flight", "gauge", "Deliveries this process is sending now.", [
        ["", this.#inFlight()],
      ]),
      family(
        "carehooks_leases_returned_total",
        "counter",
        "Deliveries this process returned to the queue at a heartbeat: held by a worker that stopped beating, or whose lease expired.",
        [["", this.#leasesReturned]],
      ),
      family(
        "carehooks_dispatcher_batches_total",
        "counter",
        "The dispatcher's statements and what they carried: claims and the deliveries they leased, completion writes and the outcomes they carried, fenced ones included (claimed ÷ claims and completed ÷ completions are how full its batches run).",
        Object.entries(this.#batches).map(([kind, n]): Sample => [`{kind="${kind}"}`, n]),
      ),
      family(
        "carehooks_breaker_transitions_total",
        "counter",
        "Subscription state changes this process wrote, by the state entered.",
        byLabel("state", this.#transitions),
      ),
    ].join("\n\n")}\n`;
  }
}
