/**
 * Buffers finished attempts and writes them in batches: at `maxItems`, or
 * `maxDelayMs` after the first one waiting, whichever comes first. One batch
 * is written at a time; what arrives meanwhile waits its own delay too, not
 * just for the write before it (which made batches as small as one write's
 * time: about 9 attempts each at 3k/s, instead of the 5 ms worth). A batch that fails is written again after
 * `retryDelayMs`, for as long as `keepTrying()` says (the leases it carries
 * still hold; writing twice is harmless: store/queue/complete.ts); then it is
 * given up and its leases expire or go back with their worker.
 */
export interface BatcherOptions<T, R> {
  readonly maxItems: number;
  readonly maxDelayMs: number;
  readonly retryDelayMs: number;
  readonly write: (items: readonly T[]) => Promise<R>;
  /** After a batch is written, with what `write` returned. */
  readonly written: (items: readonly T[], result: R) => Promise<void> | void;
  /** A write failed; it is tried again if `keepTrying()`. */
  readonly failed: (error: unknown, items: readonly T[]) => void;
  readonly keepTrying: () => boolean;
}

export class CompletionBatcher<T, R> {
  readonly #options: BatcherOptions<T, R>;
  #waiting: T[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  /** When the first of the items waiting arrived (`performance.now()`). */
  #firstAt = 0;

  constructor(options: BatcherOptions<T, R>) {
    this.#options = options;
  }

  /** Items waiting or being written. */
  get size(): number {
    return this.#waiting.length;
  }

  add(item: T): void {
    if (this.#waiting.length === 0) this.#firstAt = performance.now();
    this.#waiting.push(item);
    if (this.#waiting.length >= this.#options.maxItems) this.#start();
    else this.#timer ??= setTimeout(() => this.#start(), this.#options.maxDelayMs);
  }

  /** Writes everything waiting now, and resolves when nothing is waiting or being written. */
  async flush(): Promise<void> {
    while (this.#writing || this.#waiting.length > 0) {
      if (!this.#writing) this.#start(true);
      await this.#writing;
    }
  }

  /** Writes what waits; `all`: every batch, else full batches after the first. */
  #start(all = false): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // One batch at a time: what arrives meanwhile goes in the next, once this one is written.
    if (this.#writing || this.#waiting.length === 0) return;
    this.#writing = this.#writeAll(all).finally(() => {
      this.#writing = undefined;
      this.#rearm();
    });
  }

  async #writeAll(all: boolean): Promise<void> {
    do {
      const batch = this.#waiting.splice(0, this.#options.maxItems);
      // Those left arrived by now: their delay is counted from here (at most maxDelayMs late).
      this.#firstAt = performance.now();
      await this.#writeOne(batch);
    } while (this.#waiting.length >= this.#options.maxItems || (all && this.#waiting.length > 0));
  }

  /** After a write: a full batch goes at once, a partial one when the first of it has waited maxDelayMs. */
  #rearm(): void {
    if (this.#waiting.length === 0 || this.#writing) return;
    if (this.#waiting.length >= this.#options.maxItems) {
      this.#start();
      return;
    }
    clearTimeout(this.#timer);
    const left = this.#firstAt + this.#options.maxDelayMs - performance.now();
    this.#timer = setTimeout(() => this.#start(), Math.max(0, left));
  }

  async #writeOne(batch: readonly T[]): Promise<void> {
    for (;;) {
      try {
        const result = await this.#options.write(batch);
        await this.#options.written(batch, result);
        return;
      } catch (error) {
        this.#options.failed(error, batch);
        if (!this.#options.keepTrying()) return;
        await new Promise((resolve) => setTimeout(resolve, this.#options.retryDelayMs));
      }
    }
  }
}
