/**
 * carehooks delivers at least once: a receiver can get the same event twice
 * (a lost 2xx, a resend, a recover). De-duplicate on `event_id`, which equals
 * the `webhook-id` header and never changes across attempts.
 */

/** Where seen event ids are kept. Implement it over Redis, a database table … to share it between processes. */
export interface DedupeStore {
  /** Whether `id` was added and has not expired. */
  has(id: string): boolean | Promise<boolean>;
  /** Remembers `id` for `ttlMs` milliseconds. */
  add(id: string, ttlMs: number): void | Promise<void>;
}

export interface MemoryDedupeStoreOptions {
  /** Most ids kept; the oldest are forgotten first. Default 100 000. */
  readonly maxSize?: number;
  /** The clock in milliseconds, like `Date.now` (the default). */
  readonly now?: () => number;
}

/** An in-process {@link DedupeStore} with expiry and a size cap. Not shared between processes or restarts. */
export class MemoryDedupeStore implements DedupeStore {
  // Map iteration follows insertion order, and an id is re-inserted when added again: the first entry is the oldest.
  readonly #expiries = new Map<string, number>();
  readonly #maxSize: number;
  readonly #now: () => number;

  constructor(options: MemoryDedupeStoreOptions = {}) {
    this.#maxSize = options.maxSize ?? 100_000;
    if (!(this.#maxSize >= 1)) throw new RangeError("maxSize must be at least 1");
    this.#now = options.now ?? Date.now;
  }

  /** How many ids are kept (expired ones may still be counted until they are swept). */
  get size(): number {
    return this.#expiries.size;
  }

  has(id: string): boolean {
    const expiresAt = this.#expiries.get(id);
    if (expiresAt === undefined) return false;
    if (expiresAt <= this.#now()) {
      this.#expiries.delete(id);
      return false;
    }
    return true;
  }

  add(id: string, ttlMs: number): void {
    const now = this.#now();
    this.#expiries.delete(id);
    this.#expiries.set(id, now + ttlMs);
    this.#sweep(now);
  }

  #sweep(now: number): void {
    for (const [id, expiresAt] of this.#expiries) {
      if (this.#expiries.size <= this.#maxSize && expiresAt > now) break;
      this.#expiries.delete(id);
    }
  }
}

/**
 * Seven days: longer than carehooks' default retry schedule (about 3.2 days of
 * retries after the first attempt), so a late retry is still recognised.
 */
export const DEFAULT_DEDUPE_TTL_MS = 7 * 24 * 60 * 60 * 1000;

export interface DeduplicatorOptions {
  /** Default: a {@link MemoryDedupeStore}. */
  readonly store?: DedupeStore;
  /** How long an event id is remembered, in milliseconds. Default 7 days. */
  readonly ttlMs?: number;
}

/** The outcome of {@link Deduplicator.process}. */
export type DedupeOutcome<T> =
  | { readonly duplicate: false; readonly result: T }
  | { readonly duplicate: true; readonly result?: undefined };

/** Something with an event id: an event, or the id itself. */
export type EventIdSource = string | { readonly event_id: string };

/**
 * De-duplication keyed on `event_id`. An event is remembered only after its
 * work succeeded, so a failed attempt can be retried; within one process a
 * duplicate that arrives while the first is still being processed waits for it.
 *
 * @example
 * ```ts
 * const dedupe = new Deduplicator();
 * const outcome = await dedupe.process(event, async () => {
 *   await saveAppointment(await client.appointments.get(event.data.appointment_id));
 * });
 * if (outcome.duplicate) console.log("already handled", event.event_id);
 * ```
 */
export class Deduplicator {
  readonly store: DedupeStore;
  readonly ttlMs: number;
  readonly #inFlight = new Map<string, Promise<unknown>>();

  constructor(options: DeduplicatorOptions = {}) {
    this.store = options.store ?? new MemoryDedupeStore();
    this.ttlMs = options.ttlMs ?? DEFAULT_DEDUPE_TTL_MS;
    if (!(this.ttlMs > 0)) throw new RangeError("ttlMs must be positive");
  }

  /** Whether the event was already processed (marked). */
  async seen(event: EventIdSource): Promise<boolean> {
    return this.store.has(idOf(event));
  }

  /** Marks the event processed. */
  async markProcessed(event: EventIdSource): Promise<void> {
    await this.store.add(idOf(event), this.ttlMs);
  }

  /**
   * Runs `work` unless the event was already processed, then marks it. When
   * `work` throws, nothing is marked and the error propagates (answer non-2xx
   * so carehooks retries).
   */
  async process<T>(event: EventIdSource, work: () => T | Promise<T>): Promise<DedupeOutcome<T>> {
    const id = idOf(event);
    for (;;) {
      const running = this.#inFlight.get(id);
      if (running === undefined) break;
      // Wait for the first copy; if it failed, this copy gets its turn.
      if (
        await running.then(
          () => true,
          () => false,
        )
      )
        return { duplicate: true };
    }
    // Registered before the first await, so a copy arriving meanwhile waits instead of running too.
    const attempt = (async (): Promise<DedupeOutcome<T>> => {
      if (await this.store.has(id)) return { duplicate: true };
      const result = await work();
      await this.store.add(id, this.ttlMs);
      return { duplicate: false, result };
    })();
    this.#inFlight.set(id, attempt);
    try {
      return await attempt;
    } finally {
      if (this.#inFlight.get(id) === attempt) this.#inFlight.delete(id);
    }
  }
}

function idOf(event: EventIdSource): string {
  const id = typeof event === "string" ? event : event?.event_id;
  if (typeof id !== "string" || id === "") throw new TypeError("an event_id (a non-empty string) is required");
  return id;
}
