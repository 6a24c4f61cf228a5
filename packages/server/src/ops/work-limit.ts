/**
 * At most `concurrency` tasks at once, and at most `maxWaiting` queued behind
 * them; past that `run` refuses at once. For CPU- or thread-pool-heavy work
 * (scrypt) that must not crowd out the rest of the process: waiting forever
 * would only move the pile-up from the thread pool into memory.
 */
export class WorkLimitFull extends Error {
  override name = "WorkLimitFull";
}

export class WorkLimit {
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(
    readonly concurrency: number,
    readonly maxWaiting: number,
  ) {}

  get running(): number {
    return this.#running;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.concurrency) {
      if (this.#waiting.length >= this.maxWaiting) throw new WorkLimitFull("too many tasks waiting");
      // The finishing task hands its slot over, so #running already counts this one when it wakes.
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running += 1;
    }
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running -= 1;
    }
  }
}
