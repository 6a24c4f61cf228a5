/**
 * A fixed-window counter per key, in this process only: enough to make
 * guessing client secrets (and burning scrypt CPU) slow. Behind a load
 * balancer each API process counts on its own.
 */
export class RateLimiter {
  readonly #windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
  ) {}

  /** Counts one hit; returns the seconds to wait when over the limit, else undefined. */
  hit(key: string, now = Date.now()): number | undefined {
    let window = this.#windows.get(key);
    if (!window || now - window.start >= this.windowMs) {
      window = { start: now, count: 0 };
      this.#windows.set(key, window);
      if (this.#windows.size > 10_000) this.#prune(now);
    }
    window.count += 1;
    if (window.count <= this.limit) return undefined;
    return Math.max(1, Math.ceil((window.start + this.windowMs - now) / 1000));
  }

  /** The seconds to wait when the key is already at its limit, else undefined; counts nothing. */
  blocked(key: string, now = Date.now()): number | undefined {
    const window = this.#windows.get(key);
    if (!window || now - window.start >= this.windowMs || window.count < this.limit) return undefined;
    return Math.max(1, Math.ceil((window.start + this.windowMs - now) / 1000));
  }

  #prune(now: number): void {
    for (const [key, window] of this.#windows) if (now - window.start >= this.windowMs) this.#windows.delete(key);
  }
}
