/**
 * Buffers finished attempts and writes them in batches: at `maxItems`, or
 * `maxDelayMs` after the first one waiting, whichever comes first. One batch
 * is written at a time. A batch that fails is written again after
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

  constructor(options: BatcherOptions<T, R>) {
    this.#options = options;
  }

  /** Items waiting or being written. */
  get size(): number {
    return this.#waiting.length;
  }

  add(item: T): void {
    this.#waiting.push(item);
    if (this.#waiting.length >= this.#options.maxItems) this.#start();
    else this.#timer ??= setTimeout(() => this.#start(), this.#options.maxDelayMs);
  }

  /** Writes everything waiting now, and resolves when nothing is waiting or being written. */
  async flush(): Promise<void> {
    while (this.#writing || this.#waiting.length > 0) {
      if (!this.#writing) this.#start();
      await this.#writing;
    }
  }

  #start(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // One batch at a time: what arrives meanwhile goes in the next, as soon as this one is written.
    if (this.#writing || this.#waiting.length === 0) return;
    this.#writing = this.#writeAll().finally(() => {
      this.#writing = undefined;
    });
  }

  async #writeAll(): Promise<void> {
    while (this.#waiting.length > 0) {
      const batch = this.#waiting.splice(0, this.#options.maxItems);
      await this.#writeOne(batch);
    }
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
