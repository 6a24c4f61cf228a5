/**
 * Event ids already sent, kept while a trailing-window scan can still find
 * them again (commits land out of id order, so tails re-read a window).
 */
export class RecentIds {
  readonly #ids = new Map<string, number>();
  #newest = 0;

  constructor(private readonly keepMs: number) {}

  has(id: string): boolean {
    return this.#ids.has(id);
  }

  /** Records an id written at `at` (ms); false when it was already recorded. */
  add(id: string, at: number): boolean {
    if (this.#ids.has(id)) return false;
    this.#ids.set(id, at);
    if (at > this.#newest) {
      this.#newest = at;
      // Entries are in insertion order, which is about time order: drop from the front until one is young enough.
      for (const [old, oldAt] of this.#ids) {
        if (oldAt >= this.#newest - this.keepMs) break;
        this.#ids.delete(old);
      }
    }
    return true;
  }

  clear(): void {
    this.#ids.clear();
    this.#newest = 0;
  }
}
